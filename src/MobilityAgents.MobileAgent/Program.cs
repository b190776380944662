// The mobile agent daemon (MobilityAgents.MobileAgent): `--help` for usage and every configuration
// key. Everything lives in MobileAgentHost, the code path the tests run too.
using MobilityAgents.MobileAgent;

return await MobileAgentHost.MainAsync(args);
