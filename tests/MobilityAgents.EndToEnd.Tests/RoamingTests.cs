using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using MobilityAgents.Netlink;

namespace MobilityAgents.EndToEnd.Tests;

/// <summary>
/// The product end to end on a real kernel with real processes (see <see cref="Lab"/> for the
/// topology): the home agent daemon in the gateway namespace, one mobile agent daemon per laptop
/// namespace, a LAN host pinging the laptops' home addresses and holding a TCP connection to one of
/// them while it roams. One scenario test, because under TCG every daemon start costs tens of
/// seconds. Needs the ipip module: run it in the kernel VM
/// (<c>tests/kernel-vm/run-dotnet-tests.sh .../MobilityAgents.EndToEnd.Tests.dll -trait "Kernel=ipip"</c>).
/// The figures the lead asked for are printed as they are measured (lines "HANDOVER GAP", "EXPIRY");
/// the daemons' logs are printed on failure, and on success too with MA_E2E_LOGS=1.
/// </summary>
[Trait("Kernel", "ipip")]
public sealed class RoamingTests(ITestOutputHelper output)
{
    /// <summary>Bob's binding lifetime (short: the expiry step waits for it); heartbeats go every third of it.</summary>
    private const int BobLifetimeSeconds = 12;

    private const int AliceLifetimeSeconds = 30;
    private const int TcpPort = 7777;

    // Bounded waits, generous for .NET under TCG (about 30 times slower than native).
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(240);
    private static readonly TimeSpan KernelTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan TrafficTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan HandoverTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(60);

    private readonly Stopwatch _clock = Stopwatch.StartNew();

    [Fact]
    public async Task A_LAN_host_keeps_reaching_a_roaming_laptop_at_its_home_address_and_the_gateway_forgets_a_vanished_one()
    {
        Lab? lab = null;
        TestPki? pki = null;
        ChildProcess? ha = null, alice = null, bob = null, ping = null;
        NetworkNamespace? lapNs = null, lanNs = null;
        Socket? listener = null, client = null, server = null;
        try
        {
            // --- The topology, the certificates, the configurations. ---------------------------
            lab = await Lab.CreateAsync();
            Say($"topology up: namespaces {lab.Tag}-{{{string.Join(',', Lab.Roles)}}}");
            pki = new TestPki(IPAddress.Parse(Lab.OuterAddress));
            string haConfig = pki.Write("home-agent.json", $$"""
                {
                  "Listen": "{{Lab.OuterAddress}}:4433",
                  "Certificate": "{{pki.ServerPem}}",
                  "PrivateKey": "{{pki.ServerKey}}",
                  "ClientCa": "{{pki.CaPem}}",
                  "HomePrefix": "{{Lab.HomePrefix}}",
                  "OuterAddress": "{{Lab.OuterAddress}}",
                  "LanInterface": "lan0",
                  "DefaultLifetimeSeconds": {{BobLifetimeSeconds}},
                  "MinimumLifetimeSeconds": 10,
                  "Authorizations": { "alice": ["{{Lab.AliceHome}}"], "bob": ["{{Lab.BobHome}}"] }
                }
                """);
            string aliceConfig = pki.Write("alice.json", MobileConfig(pki.AlicePem, pki.AliceKey, "alice-laptop", AliceLifetimeSeconds, lab.Ns("lap")));
            string bobConfig = pki.Write("bob.json", MobileConfig(pki.BobPem, pki.BobKey, "bob-laptop", BobLifetimeSeconds, null));

            // --- Both daemons start at once: the laptops retry until the gateway listens. --------
            string dotnet = DotnetHost();
            ha = ChildProcess.Start("home-agent", lab.Ns("gw"), dotnet, [Daemon("home-agent", "MobilityAgents.HomeAgent.dll"), "--config", haConfig]);
            // Alice's agent opens everything in her namespace through its Namespace key; bob's runs inside his (ip netns exec).
            alice = ChildProcess.Start("alice", null, dotnet, [Daemon("mobile-agent", "MobilityAgents.MobileAgent.dll"), "--config", aliceConfig]);
            bob = ChildProcess.Start("bob", lab.Ns("lap2"), dotnet, [Daemon("mobile-agent", "MobilityAgents.MobileAgent.dll"), "--config", bobConfig]);
            Say($"started {ha}, {alice}, {bob}");
            Say("home agent: " + await ha.WaitForLineAsync(l => l.Contains("Listening on", StringComparison.Ordinal), StartTimeout, "'Listening on' (event 1000)"));
            Say("alice: " + await alice.WaitForLineAsync(l => l.Contains($"Registered home address {Lab.AliceHome} at care-of {Lab.AliceCareOf1}", StringComparison.Ordinal), StartTimeout, "registration (event 2100)"));
            Say("bob: " + await bob.WaitForLineAsync(l => l.Contains($"Registered home address {Lab.BobHome} at care-of {Lab.BobCareOf}", StringComparison.Ordinal), StartTimeout, "registration (event 2100)"));

            // --- The gateway programs both bindings: tunnel, /32 route, proxy ARP, forwarding. ----
            Snapshot s = await WaitForAsync(lab, ["gw", "lap", "lap2"], x =>
                GatewayHas(x, Lab.AliceHome, Lab.AliceCareOf1) && GatewayHas(x, Lab.BobHome, Lab.BobCareOf) &&
                LaptopHas(x, "lap", Lab.AliceHome, Lab.AliceCareOf1) && LaptopHas(x, "lap2", Lab.BobHome, Lab.BobCareOf), "both bindings in the gateway's and the laptops' kernels");
            Tunnel aliceTunnel = s.Tunnels("gw").Single(t => t.Points(Lab.AliceCareOf1));
            Tunnel aliceMirror = s.Tunnels("lap").Single();
            Assert.Equal(2, s.Tunnels("gw").Count);
            Assert.True(s.Forwarding("gw"), "the home agent turns ip_forward on in the gateway");
            Say("gateway tunnels: " + string.Join("; ", s.Tunnels("gw")));
            Say("gateway routes proto 77: " + string.Join("; ", s.Routes77("gw")) + "; proxies: " + string.Join("; ", s.Proxies("gw")));
            Say("alice's mirror tunnel: " + aliceMirror + "; rules: " + string.Join("; ", s.Marked("lap").Where(m => m.StartsWith("rule", StringComparison.Ordinal))));

            // --- The LAN host reaches both home addresses (proxy ARP, the gateway, the tunnels). --
            ping = ChildProcess.Start("ping", lab.Ns("lan"), "bash", ["-c", $"stdbuf -oL ping -n -D -i 0.2 {Lab.AliceHome} & stdbuf -oL ping -n -D -i 0.2 {Lab.BobHome} & wait"]);
            await ping.WaitUntilAsync(l => Replies(l, Lab.AliceHome).Any() && Replies(l, Lab.BobHome).Any(), TrafficTimeout, "replies from both home addresses");
            Say($"LAN host {Lab.LanHost} pings {Lab.AliceHome} (alice) and {Lab.BobHome} (bob): answered");

            // --- A TCP connection from the LAN host to alice's home address. --------------------
            lapNs = NetworkNamespace.OpenByName(lab.Ns("lap"));
            lanNs = NetworkNamespace.OpenByName(lab.Ns("lan"));
            listener = lapNs.Run(() =>
            {
                var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                l.Bind(new IPEndPoint(IPAddress.Parse(Lab.AliceHome), TcpPort));
                l.Listen(1);
                return l;
            });
            client = lanNs.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            Task<Socket> accepting = listener.AcceptAsync(TestContext.Current.CancellationToken).AsTask();
            await client.ConnectAsync(new IPEndPoint(IPAddress.Parse(Lab.AliceHome), TcpPort), TestContext.Current.CancellationToken).AsTask().WaitAsync(TrafficTimeout, TestContext.Current.CancellationToken);
            server = await accepting.WaitAsync(TrafficTimeout, TestContext.Current.CancellationToken);
            Assert.Equal(IPAddress.Parse(Lab.LanHost), ((IPEndPoint)server.RemoteEndPoint!).Address);
            await EchoAsync(client, server, "before the move");
            Say($"TCP {client.LocalEndPoint} -> {client.RemoteEndPoint}: echoed before the move");

            // --- Alice moves from v1 to v2 (new address, new default route), and back. ---------
            (double t0, double firstAfter) = await HandoverAsync(lab, ha, alice, ping, client, server, toV2: true);

            // Both tunnels were re-pointed in place (same ifindex): nothing torn down.
            // (Bob's binding is polled, not asserted once: under TCG a laptop's first registration can
            // lapse and be renewed right after it is made, when its first kernel write takes longer
            // than what is left of the lifetime: the first heartbeat only goes after that write.)
            s = await WaitForAsync(lab, ["gw", "lap", "lap2"], x => GatewayHas(x, Lab.AliceHome, Lab.AliceCareOf2) && LaptopHas(x, "lap", Lab.AliceHome, Lab.AliceCareOf2) &&
                                                                   GatewayHas(x, Lab.BobHome, Lab.BobCareOf), "alice's binding at the new care-of address, bob's unchanged");
            Tunnel aliceMoved = s.Tunnels("gw").Single(t => t.Points(Lab.AliceCareOf2));
            Say("gateway tunnel after the move: " + aliceMoved + "; alice's mirror: " + s.Tunnels("lap").Single());
            Assert.Equal(aliceTunnel.Index, aliceMoved.Index);
            Assert.Equal(aliceMirror.Index, s.Tunnels("lap").Single().Index);

            // Bob's pings went on while alice moved.
            List<double> bobTimes = [.. Replies(ping.Lines, Lab.BobHome).Select(r => r.Time).Where(t => t > t0 - 2 && t < firstAfter + 2).Order()];
            Assert.Contains(bobTimes, t => t > firstAfter);
            double bobMaxGap = bobTimes.Zip(bobTimes.Skip(1), (a, b) => b - a).DefaultIfEmpty(0).Max();
            Say(string.Create(CultureInfo.InvariantCulture, $"bob during alice's move: {bobTimes.Count} replies, longest gap {bobMaxGap:0.000} s"));
            Assert.True(bobMaxGap < 10, $"bob's pings stalled {bobMaxGap:0.0} s while alice moved");

            await HandoverAsync(lab, ha, alice, ping, client, server, toV2: false);
            s = await WaitForAsync(lab, ["gw", "lap"], x => GatewayHas(x, Lab.AliceHome, Lab.AliceCareOf1) && LaptopHas(x, "lap", Lab.AliceHome, Lab.AliceCareOf1), "alice's binding back at her first care-of address");
            Assert.Equal(aliceTunnel.Index, s.Tunnels("gw").Single(t => t.Points(Lab.AliceCareOf1)).Index);

            // --- Bob vanishes (his link is cut: no deregistration can get out). ------------------
            int haMark = ha.Lines.Count;
            double cut = await lab.CutSecondLaptopAsync();
            Say($"bob's link cut; waiting for his binding to expire (lifetime {BobLifetimeSeconds} s)");
            s = await WaitForAsync(lab, ["gw"], x => !x.Tunnels("gw").Any(t => t.Remote == Lab.BobCareOf) &&
                                                    !x.Routes77("gw").Any(r => r.StartsWith(Lab.BobHome + " ", StringComparison.Ordinal)) &&
                                                    !x.Proxies("gw").Any(p => p.StartsWith(Lab.BobHome + " ", StringComparison.Ordinal)),
                "bob's tunnel, route and proxy entry gone", TimeSpan.FromSeconds(BobLifetimeSeconds + 60));
            double gone = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
            string expired = await ha.WaitForLineAsync(l => l.Contains("Binding Expired: bob", StringComparison.Ordinal), KernelTimeout, "'Binding Expired: bob' (event 1100)", haMark);
            string removed = await ha.WaitForLineAsync(l => l.Contains("ip link del dev", StringComparison.Ordinal), KernelTimeout, "bob's tunnel deleted", haMark);
            double expiredAfter = ChildProcess.LogTime(expired) - cut;
            Say(string.Create(CultureInfo.InvariantCulture,
                $"EXPIRY: the home agent expired bob's binding {expiredAfter:0.0} s after his link was cut and deleted his tunnel at +{ChildProcess.LogTime(removed) - cut:0.0} s " +
                $"(lifetime {BobLifetimeSeconds} s, heartbeat every {BobLifetimeSeconds / 3} s); confirmed gone by ip -j at +{gone - cut:0.0} s"));
            Say("home agent: " + expired);
            // A lifetime after his last heartbeat (about one interval before the cut, later under load):
            // not at once, which would mean something other than expiry removed it.
            Assert.True(expiredAfter >= BobLifetimeSeconds / 2.0, $"bob's binding expired {expiredAfter:0.0} s after the cut: too soon for a {BobLifetimeSeconds} s lifetime");
            Assert.True(GatewayHas(s, Lab.AliceHome, Lab.AliceCareOf1), "alice's binding outlives bob's");
            double lastAlice = Replies(ping.Lines, Lab.AliceHome).Max(r => r.Time);
            await ping.WaitUntilAsync(l => Replies(l, Lab.AliceHome).Any(r => r.Time > lastAlice), TrafficTimeout, $"replies from {Lab.AliceHome} after bob's expiry");

            // --- Clean stops: the laptops first (they deregister), then the gateway. -------------
            await ping.DisposeAsync();
            ping = null;
            server.Dispose();
            client.Dispose();
            listener.Dispose();
            (server, client, listener) = (null, null, null);

            alice.Signal(15);
            bob.Signal(15);
            int aliceExit = await alice.ExitAsync(StopTimeout);
            int bobExit = await bob.ExitAsync(StopTimeout);
            Say($"SIGTERM: alice exited {aliceExit}, bob exited {bobExit}");
            Assert.Equal(0, aliceExit);
            Assert.Equal(0, bobExit);
            s = await WaitForAsync(lab, ["gw"], x => x.Tunnels("gw").Count == 0, "alice's deregistration removing her tunnel from the gateway");
            ha.Signal(15);
            int haExit = await ha.ExitAsync(StopTimeout);
            Say($"SIGTERM: home agent exited {haExit}");
            Assert.Equal(0, haExit);

            s = await lab.SnapshotAsync();
            var left = Lab.Roles.SelectMany(r => s.Marked(r).Select(m => $"{r}: {m}")).ToList();
            Assert.True(left.Count == 0, "marked objects left after clean stops:\n" + string.Join('\n', left));
            Say("after the clean stops no namespace holds a marked object (links 'mobilityagents:'/ma*, routes/rules/proxies protocol 77, home addresses)");
            ReportKernelErrors(ha, alice, bob);
            if (Environment.GetEnvironmentVariable("MA_E2E_LOGS") == "1")
            {
                foreach (ChildProcess d in new[] { ha, alice, bob })
                {
                    Say($"===== {d} log:\n{d.Output}");
                }
            }
        }
        catch (Exception e)
        {
            await DiagnoseAsync(e, lab, ha, alice, bob, ping);
            throw;
        }
        finally
        {
            // Processes first (kill -9 any still running), then sockets, then the namespaces.
            foreach (ChildProcess? p in new[] { ping, alice, bob, ha })
            {
                if (p is not null)
                {
                    await p.DisposeAsync();
                }
            }

            server?.Dispose();
            client?.Dispose();
            listener?.Dispose();
            lapNs?.Dispose();
            lanNs?.Dispose();
            if (lab is not null)
            {
                await lab.DisposeAsync();
            }

            pki?.Dispose();
            Say("cleaned up");
        }
    }

    private static string MobileConfig(string certificate, string key, string deviceId, int lifetime, string? netns) => $$"""
        {
          "HomeAgent": "https://{{Lab.OuterAddress}}:4433",
          "HomeAgentAddress": "{{Lab.OuterAddress}}",
          "Certificate": "{{certificate}}",
          "PrivateKey": "{{key}}",
          "Ca": "{{Path.Combine(Path.GetDirectoryName(certificate)!, "ca.pem")}}",
          "DeviceId": "{{deviceId}}",
          "LifetimeSeconds": {{lifetime}},
          "Namespace": "{{netns ?? ""}}"
        }
        """;

    /// <summary>
    /// Moves alice (to v2 or back to v1) while the LAN host pings her home address, waits for the
    /// first reply through the new path, prints the gap and where the time went (from the daemons'
    /// time stamps, same clock), and checks the TCP connection still carries data both ways.
    /// Returns the time of the change and of the first reply after it.
    /// </summary>
    private async Task<(double Start, double FirstReply)> HandoverAsync(Lab lab, ChildProcess ha, ChildProcess alice, ChildProcess ping, Socket client, Socket server, bool toV2)
    {
        (string from, string to) = toV2 ? (Lab.AliceCareOf1, Lab.AliceCareOf2) : (Lab.AliceCareOf2, Lab.AliceCareOf1);
        int haMark = ha.Lines.Count, aliceMark = alice.Lines.Count;
        (double t0, double t1) = await lab.MoveLaptopAsync(toV2);
        Say($"alice moved: {from} -> {to} on {(toV2 ? "v2" : "v1")} (the batch took {(t1 - t0) * 1000:0} ms)");
        await ping.WaitUntilAsync(l => Replies(l, Lab.AliceHome).Any(r => r.Time > t1), HandoverTimeout, $"reply from {Lab.AliceHome} after the move to {to}");
        IReadOnlyList<PingReply> replies = Replies(ping.Lines, Lab.AliceHome).ToList();
        double lastBefore = replies.Where(r => r.Time < t0).Max(r => r.Time);
        double firstAfter = replies.Where(r => r.Time > t1).Min(r => r.Time);
        Say(string.Create(CultureInfo.InvariantCulture,
            $"HANDOVER GAP {from} -> {to}: {firstAfter - t0:0.000} s from the address change to the first ping reply through the new path " +
            $"(ping outage {firstAfter - lastBefore:0.000} s between the last reply before and the first after; ping interval 0.2 s)"));

        string detected = await alice.WaitForLineAsync(l => l.Contains($"-> {to}", StringComparison.Ordinal) && l.Contains("Care-of address", StringComparison.Ordinal), KernelTimeout, "the care-of change (event 2300)", aliceMark);
        string registered = await alice.WaitForLineAsync(l => l.Contains($"Registered home address {Lab.AliceHome} at care-of {to}", StringComparison.Ordinal), KernelTimeout, $"registration from {to}", aliceMark);
        string laptopRepointed = await alice.WaitForLineAsync(l => l.Contains($"type ipip local {to}", StringComparison.Ordinal), KernelTimeout, "its tunnel re-pointed", aliceMark);
        string moved = await ha.WaitForLineAsync(l => l.Contains("Binding Moved: alice", StringComparison.Ordinal), KernelTimeout, "'Binding Moved: alice'", haMark);
        string gatewayRepointed = await ha.WaitForLineAsync(l => l.Contains($"remote {to}", StringComparison.Ordinal) && l.Contains("ip link set", StringComparison.Ordinal), KernelTimeout, "alice's tunnel re-pointed", haMark);
        string At(string line) => string.Create(CultureInfo.InvariantCulture, $"+{ChildProcess.LogTime(line) - t0:0.000} s");
        Say($"handover timeline: alice sees the new care-of {At(detected)}, home agent moves the binding {At(moved)}, " +
            $"gateway tunnel re-pointed {At(gatewayRepointed)}, alice registered {At(registered)}, alice's tunnel re-pointed {At(laptopRepointed)}, " +
            string.Create(CultureInfo.InvariantCulture, $"first ping reply +{firstAfter - t0:0.000} s"));

        var tcp = Stopwatch.StartNew();
        await EchoAsync(client, server, $"after the move to {to}");
        Say($"TCP: the same connection echoed after the move to {to} ({tcp.Elapsed.TotalSeconds:0.0} s for the round trip)");
        return (t0, firstAfter);
    }

    /// <summary>The gateway holds a tunnel to <paramref name="careOf"/>, the home address routed into it (proto 77) and a proxy entry on lan0 (protocol 77).</summary>
    private static bool GatewayHas(Snapshot s, string home, string careOf) =>
        s.Tunnels("gw").FirstOrDefault(t => t.Points(careOf)) is { } t &&
        s.Routes77("gw").Contains($"{home} dev {t.Name}") &&
        s.Proxies("gw").Contains($"{home} dev lan0 protocol 77");

    /// <summary>The laptop holds its mirror tunnel from <paramref name="careOf"/> to the gateway, the home address on it, and a protocol-77 rule from it.</summary>
    private static bool LaptopHas(Snapshot s, string role, string home, string careOf) =>
        s.Tunnels(role).FirstOrDefault() is { } t && t.Local == careOf && t.Remote == Lab.OuterAddress &&
        s.Addresses(role).Contains($"{home} dev {t.Name}") &&
        s.Marked(role).Any(m => m.StartsWith("rule ", StringComparison.Ordinal) && m.Contains($"from {home} ", StringComparison.Ordinal));

    private static IEnumerable<PingReply> Replies(IEnumerable<string> lines, string from) => PingReply.Parse(lines).Where(r => r.From == from);

    /// <summary>Polls snapshots of <paramref name="roles"/> (about one a second) until <paramref name="done"/> holds.</summary>
    private async Task<Snapshot> WaitForAsync(Lab lab, string[] roles, Func<Snapshot, bool> done, string what, TimeSpan? timeout = null)
    {
        var clock = Stopwatch.StartNew();
        TimeSpan limit = timeout ?? KernelTimeout;
        while (true)
        {
            Snapshot s = await lab.SnapshotAsync(roles);
            if (done(s))
            {
                return s;
            }

            if (clock.Elapsed > limit)
            {
                throw new Xunit.Sdk.XunitException($"no {what} within {limit.TotalSeconds:0} s; last snapshot:\n{s.Summary()}");
            }

            await Task.Delay(1000, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>Client sends a line on the connection; the laptop's end answers it; the client reads the answer.</summary>
    internal static async Task EchoAsync(Socket client, Socket server, string message)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(TrafficTimeout);
        byte[] request = Encoding.ASCII.GetBytes(message + "\n");
        await client.SendAsync(request, SocketFlags.None, cts.Token);
        byte[] got = await ReceiveExactlyAsync(server, request.Length, cts.Token);
        Assert.Equal(message + "\n", Encoding.ASCII.GetString(got));
        byte[] reply = Encoding.ASCII.GetBytes("echo: " + message + "\n");
        await server.SendAsync(reply, SocketFlags.None, cts.Token);
        byte[] echoed = await ReceiveExactlyAsync(client, reply.Length, cts.Token);
        Assert.Equal("echo: " + message + "\n", Encoding.ASCII.GetString(echoed));
    }

    private static async Task<byte[]> ReceiveExactlyAsync(Socket socket, int length, CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[length];
        int have = 0;
        while (have < length)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(have), SocketFlags.None, cancellationToken);
            if (n == 0)
            {
                throw new Xunit.Sdk.XunitException($"the TCP connection was closed after {have} of {length} bytes");
            }

            have += n;
        }

        return buffer;
    }

    /// <summary>Kernel programming errors the daemons logged (event 1401 home agent, 2401 mobile agent): printed, for the record.</summary>
    private void ReportKernelErrors(params ChildProcess[] daemons)
    {
        foreach (ChildProcess d in daemons)
        {
            List<string> errors = [.. d.Lines.Where(l => l.Contains("[1401]", StringComparison.Ordinal) || l.Contains("[2401]", StringComparison.Ordinal) || l.Contains("fail", StringComparison.Ordinal))];
            Say($"{d.Name}: {errors.Count} kernel error/failure line(s){(errors.Count > 0 ? ":\n  " + string.Join("\n  ", errors) : "")}");
        }
    }

    private async Task DiagnoseAsync(Exception e, Lab? lab, params ChildProcess?[] processes)
    {
        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"===== FAILED after {_clock.Elapsed.TotalSeconds:0.0} s: {e.Message}");
        foreach (ChildProcess? p in processes)
        {
            if (p is not null)
            {
                report.AppendLine(CultureInfo.InvariantCulture, $"===== {p} {(p.HasExited ? "exited" : "running")}, last lines:");
                report.AppendLine(p.Tail(p.Name == "ping" ? 20 : 200));
            }
        }

        if (lab is not null)
        {
            try
            {
                report.AppendLine("===== kernel state of every namespace:");
                report.AppendLine((await lab.SnapshotAsync()).Summary());
            }
            catch (Exception x) when (x is not OutOfMemoryException)
            {
                report.AppendLine("(no snapshot: " + x.Message + ")");
            }
        }

        Say(report.ToString());
    }

    private void Say(string message)
    {
        string line = string.Create(CultureInfo.InvariantCulture, $"[e2e +{_clock.Elapsed.TotalSeconds,6:0.0}s] {message}");
        Console.WriteLine(line);
        try
        {
            output.WriteLine(line);
        }
        catch (InvalidOperationException)
        {
        }
    }

    /// <summary>The dotnet host running these tests (the daemons run on the same one).</summary>
    internal static string DotnetHost() =>
        Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";

    /// <summary>A daemon's entry assembly, copied beside the tests by the CopyDaemons target.</summary>
    internal static string Daemon(string folder, string dll)
    {
        string path = Path.Combine(AppContext.BaseDirectory, folder, dll);
        return File.Exists(path) ? path : throw new FileNotFoundException($"{path}: build the solution first (the CopyDaemons target copies both daemons beside the tests)", path);
    }
}
