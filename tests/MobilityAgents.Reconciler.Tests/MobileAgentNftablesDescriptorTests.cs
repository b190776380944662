using Microsoft.Win32.SafeHandles;

[assembly: AssemblyFixture(typeof(MobilityAgents.Reconciler.Tests.MobileAgentNftablesReserve))]

namespace MobilityAgents.Reconciler.Tests;

/// <summary>
/// What the mobile agent daemon does at start-up: keep a descriptor below 1024 for libnftables
/// (Nftables.ReserveDescriptor), before the test process has hundreds of pipes open.
/// </summary>
public sealed class MobileAgentNftablesReserve
{
    public MobileAgentNftablesReserve() => Nftables.ReserveDescriptor();
}

[CollectionDefinition(nameof(MobileAgentNftablesDescriptorCollection), DisableParallelization = true)]
public sealed class MobileAgentNftablesDescriptorCollection;

/// <summary>
/// libnftables 1.0.x select()s on its socket, and glibc aborts the process when that descriptor is
/// 1024 or more. With more than 1024 descriptors open, a batch must still work (the reserved
/// descriptor) or be refused with an error, never abort the process. Runs alone: it fills the
/// descriptor table.
/// </summary>
[Collection(nameof(MobileAgentNftablesDescriptorCollection))]
public sealed class MobileAgentNftablesDescriptorTests
{
    [Fact]
    public void WithOver1024DescriptorsOpen_BatchesUseTheReservedOne_OrAreRefused()
    {
        using var ns = new MobileAgentTestNamespace();
        MobileAgentState s = MobileAgentHostLab.State() with { TcpPorts = MobileAgentHostLab.Ports(25) };
        var held = new List<SafeFileHandle>();
        try
        {
            while (held.Count < 1100)
            {
                held.Add(File.OpenHandle("/dev/null"));
            }

            // The reserved descriptor (below 1024) is handed to the context's socket.
            MobileNftTable.Replace(ns.Namespace, s);
            Assert.True(MobileNftTable.Matches(MobileNftTable.List(ns.Namespace)!, s));

            // Without it, and every number below 1024 taken: a refusal naming the cause, not an abort.
            Nftables.DropReservedDescriptor();
            while (true)
            {
                SafeFileHandle h = File.OpenHandle("/dev/null");
                held.Add(h);
                if (h.DangerousGetHandle() >= 1100)
                {
                    break;
                }
            }

            NftablesException e = Assert.Throws<NftablesException>(() => MobileNftTable.Delete(ns.Namespace));
            Assert.Contains("FD_SETSIZE", e.NftError, StringComparison.Ordinal);
        }
        finally
        {
            foreach (SafeFileHandle h in held)
            {
                h.Dispose();
            }

            Nftables.ReserveDescriptor();
        }

        MobileNftTable.Delete(ns.Namespace);
        Assert.Null(MobileNftTable.List(ns.Namespace));
    }
}
