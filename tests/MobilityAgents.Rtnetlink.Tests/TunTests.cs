using System.Text.Json;
using static MobilityAgents.Rtnetlink.RtnetlinkConstants;

namespace MobilityAgents.Rtnetlink.Tests;

/// <summary>TUN devices created inside a namespace, read back with <c>ip -j -d link show</c>.</summary>
public class TunTests
{
    private static bool HasLink(TestNamespace ns, string name) => Oracle.LinkNames(ns).Contains(name);

    [Fact]
    public void Create_makes_a_tun_link_in_the_namespace_that_goes_away_on_dispose()
    {
        using var ns = new TestNamespace();
        string name = "matun" + Guid.NewGuid().ToString("N")[..6];

        using (TunDevice tun = TunDevice.Create(name, ns.Namespace))
        {
            Assert.Equal(name, tun.Name);
            Assert.False(tun.Handle.IsInvalid);
            JsonElement ip = Oracle.Link(ns, name);
            JsonElement info = ip.GetProperty("linkinfo");
            Assert.Equal("tun", info.GetProperty("info_kind").GetString());
            Assert.Equal("tun", info.GetProperty("info_data").Str("type"));
            Assert.False(info.GetProperty("info_data").GetProperty("pi").GetBoolean()); // IFF_NO_PI
            Assert.False(info.GetProperty("info_data").GetProperty("persist").GetBoolean());
            Assert.Equal("none", ip.Str("link_type"));
            Link ours = Assert.IsType<Link>(ns.Handle.Links.Get(name));
            Assert.Equal("tun", ours.Kind);
            Assert.Equal(ip.GetProperty("ifindex").GetInt32(), ours.Index);
            Assert.Equal((ushort)65534, ours.DeviceType); // ARPHRD_NONE
            // Created in the namespace, not in the caller's (read-only look at the root namespace).
            Assert.DoesNotContain(Ip.Json("link", "show").EnumerateArray(), l => l.Str("ifname") == name);
        }

        // Closing the last handle unregisters the device (a bounded wait: a child process forked
        // elsewhere in this test run may briefly hold a copy of the descriptor until it execs).
        Oracle.Eventually(() => !HasLink(ns, name), $"{name} gone after dispose");
        Assert.Null(ns.Handle.Links.Get(name));
    }

    [Fact]
    public void Kernel_fills_in_a_percent_d_name()
    {
        using var ns = new TestNamespace();

        using TunDevice a = TunDevice.Create("ma%d", ns.Namespace);
        using TunDevice b = TunDevice.Create("ma%d", ns.Namespace);

        Assert.Equal("ma0", a.Name);
        Assert.Equal("ma1", b.Name);
        Assert.Equal("tun", Oracle.Link(ns, "ma0").GetProperty("linkinfo").GetProperty("info_kind").GetString());
        Assert.Equal("tun", Oracle.Link(ns, "ma1").GetProperty("linkinfo").GetProperty("info_kind").GetString());
    }

    [Fact]
    public void Persistent_device_outlives_its_handle_until_deleted_with_the_links_service()
    {
        using var ns = new TestNamespace();
        string name = "mapt" + Guid.NewGuid().ToString("N")[..6];

        using (TunDevice tun = TunDevice.Create(name, ns.Namespace))
        {
            tun.SetPersistent(true);
            Assert.True(Oracle.Link(ns, name).GetProperty("linkinfo").GetProperty("info_data").GetProperty("persist").GetBoolean());
        }

        Assert.True(HasLink(ns, name));
        Assert.Equal("tun", ns.Handle.Links.Get(name)?.Kind);
        // It can be brought up without an owner (no carrier, but administratively up).
        ns.Handle.Links.SetUp(ns.Handle.Links.IndexOf(name));
        Assert.Contains("UP", Oracle.Flags(ns, name));
        Assert.True(ns.Handle.Links.Get(name)!.IsUp);
        Assert.Equal(0u, ns.Handle.Links.Get(name)!.Flags & IFF_LOWER_UP);

        Assert.True(ns.Handle.Links.Delete(name));

        Assert.False(HasLink(ns, name));
        Assert.False(ns.Handle.Links.Delete(name));
    }

    [Fact]
    public void Reattaching_to_a_persistent_device_and_clearing_persistence_removes_it_on_close()
    {
        using var ns = new TestNamespace();
        string name = "mare" + Guid.NewGuid().ToString("N")[..6];
        using (TunDevice first = TunDevice.Create(name, ns.Namespace))
        {
            first.SetPersistent(true);
        }

        int index = ns.Handle.Links.IndexOf(name);
        using (TunDevice again = TunDevice.Create(name, ns.Namespace))
        {
            Assert.Equal(name, again.Name);
            Assert.Equal(index, ns.Handle.Links.IndexOf(name)); // the same device, not a new one
            again.SetPersistent(false);
        }

        Oracle.Eventually(() => !HasLink(ns, name), $"{name} gone after persistence was cleared and the handle closed");
    }

    [Theory]
    [InlineData("")]
    [InlineData("much-too-long-name")]
    [InlineData("bad/name")]
    public void Invalid_names_are_rejected_before_opening_the_device(string bad)
    {
        using var ns = new TestNamespace();

        Assert.Throws<ArgumentException>(() => TunDevice.Create(bad, ns.Namespace));

        Assert.Equal(["lo"], Oracle.LinkNames(ns));
    }
}
