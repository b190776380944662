using System.Net;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using MobilityAgents.Core;
using MobilityAgents.Netlink;
using MobilityAgents.Rtnetlink;

namespace MobilityAgents.Reconciler;

/// <summary>
/// Whether the kernel can make classic ipip links: the "auto" datapath's question. Asked the only
/// reliable way, by making one (which also loads the module on demand, as <c>ip link add</c>
/// does) and deleting it at once. The probe link is marked like every object of ours
/// ("ma..." with alias <c>mobilityagents:probe</c>), so a crash between the two steps leaves
/// nothing the next start's sweep would not remove.
/// </summary>
[SupportedOSPlatform("linux")]
public static class IpipSupport
{
    /// <summary>The probe link's alias.</summary>
    public const string ProbeAlias = Ownership.LinkAliasPrefix + "probe";

    /// <summary>
    /// Null when the kernel of <paramref name="netns"/> can create an ipip link; otherwise why not,
    /// as the failed operation with its errno (e.g. "ip link add ... type ipip ...: EOPNOTSUPP ...").
    /// </summary>
    public static string? Probe(NetworkNamespace netns)
    {
        ArgumentNullException.ThrowIfNull(netns);
        string name = Ownership.LinkNamePrefix + "probe" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        try
        {
            using RouteNetlink rt = RouteNetlink.Open(netns);
            // A remote no real tunnel uses (the broadcast of TEST-NET-1): classic links are told
            // apart by their endpoints, so EEXIST would also mean the kernel has ipip.
            rt.Links.AddIpip(name, new IpipParameters { Remote = IPAddress.Parse("192.0.2.255"), Ttl = 64, PathMtuDiscovery = true }, 1480, ProbeAlias);
            rt.Links.Delete(name);
            return null;
        }
        catch (NetlinkException e) when (e.IsExists)
        {
            return null;
        }
        catch (NetlinkException e)
        {
            return e.Message;
        }
        catch (NetlinkSocketException e)
        {
            return e.Message;
        }
    }
}
