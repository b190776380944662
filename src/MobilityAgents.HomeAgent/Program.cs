// The home agent daemon (MobilityAgents.HomeAgent): `--help` for usage and every configuration key.
// Everything but the kernel datapath lives in HomeAgentHost, the code path the tests run too.
//
// The kernel datapath plugs in here: one hosted service, the only writer of kernel state, that
// subscribes to the BindingTable and programs tunnels, routes and proxy ARP (Datapath/KernelDatapath.cs).
using MobilityAgents.HomeAgent;
using MobilityAgents.HomeAgent.Datapath;

return await HomeAgentHost.MainAsync(args, datapath: static (services, _) => services.AddHostedService<KernelDatapath>());
