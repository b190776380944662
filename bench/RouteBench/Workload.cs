using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using MobilityAgents.Rtnetlink;

namespace MobilityAgents.Bench;

/// <summary>
/// N host routes 10.1.0.0/32, 10.1.0.1/32, ... <c>dev veth0 table 100 proto 77</c>; the replace
/// phase rewrites each with a gateway (<c>via 192.0.2.254</c>), so the kernel builds a new
/// fib_info per route. The same work, as ip -batch files, for the ip side.
/// </summary>
internal sealed class Workload
{
    public const uint Table = 100;
    public const byte Protocol = 77; // the test protocol marker (99 is openr's)
    public const string Gateway = "192.0.2.254";
    private const uint FirstAddress = 0x0A010000; // 10.1.0.0

    /// <summary>The most routes the address range holds: 10.1.0.0 up to 10.255.255.255.</summary>
    public const int MaxRoutes = (int)(0x0AFFFFFF - FirstAddress + 1);

    private static readonly IPAddress GatewayAddress = IPAddress.Parse(Gateway);
    private readonly HashSet<string> _destinations;

    public Workload(int count, int interfaceIndex, string directory, string tag)
    {
        Count = count;
        InterfaceIndex = interfaceIndex;
        _destinations = new HashSet<string>(count, StringComparer.Ordinal);
        var add = new StringBuilder();
        var replace = new StringBuilder();
        var del = new StringBuilder();
        for (int i = 0; i < count; i++)
        {
            string d = DestinationText(i);
            _destinations.Add(d);
            add.Append(CultureInfo.InvariantCulture, $"route add {d}/32 dev {BenchNamespace.Device} table {Table} proto {Protocol}\n");
            replace.Append(CultureInfo.InvariantCulture, $"route replace {d}/32 via {Gateway} dev {BenchNamespace.Device} table {Table} proto {Protocol}\n");
            del.Append(CultureInfo.InvariantCulture, $"route del {d}/32 dev {BenchNamespace.Device} table {Table} proto {Protocol}\n");
        }

        AddFile = Write(directory, $"{tag}-add.batch", add);
        ReplaceFile = Write(directory, $"{tag}-replace.batch", replace);
        DeleteFile = Write(directory, $"{tag}-del.batch", del);
    }

    public int Count { get; }

    public int InterfaceIndex { get; }

    public string AddFile { get; }

    public string ReplaceFile { get; }

    public string DeleteFile { get; }

    private static string Write(string directory, string name, StringBuilder text)
    {
        string path = Path.Combine(directory, name);
        File.WriteAllText(path, text.ToString());
        return path;
    }

    private static uint Destination(int i) => FirstAddress + (uint)i;

    private static string DestinationText(int i)
    {
        uint a = Destination(i);
        return string.Create(CultureInfo.InvariantCulture, $"{a >> 24}.{(a >> 16) & 0xff}.{(a >> 8) & 0xff}.{a & 0xff}");
    }

    /// <summary>
    /// The routes as the library takes them. Built inside the timed region on purpose: ip parses its
    /// text inside its own timing, so the library side pays for building its objects too.
    /// </summary>
    public RouteEntry[] Routes(bool withGateway)
    {
        var routes = new RouteEntry[Count];
        Span<byte> b = stackalloc byte[4];
        for (int i = 0; i < Count; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(b, Destination(i));
            routes[i] = new RouteEntry
            {
                Destination = new IPAddress(b),
                DestinationPrefixLength = 32,
                Table = Table,
                Protocol = Protocol,
                OutputInterface = InterfaceIndex,
                Gateway = withGateway ? GatewayAddress : null,
            };
        }

        return routes;
    }

    /// <summary>
    /// Checks, independently of the library (with <c>ip -j route show table 100</c>), that table 100
    /// holds exactly <paramref name="expected"/> routes of this workload (0 or all of them), marked
    /// proto 77, with or without the replace phase's gateway.
    /// </summary>
    public void Verify(Ip ip, string ns, string after, int expected, bool withGateway)
    {
        string json = ip.Capture("-n", ns, "-j", "route", "show", "table", Table.ToString(CultureInfo.InvariantCulture));
        int count = 0;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        if (!string.IsNullOrWhiteSpace(json))
        {
            using var doc = JsonDocument.Parse(json);
            foreach (JsonElement r in doc.RootElement.EnumerateArray())
            {
                count++;
                string dst = Text(r, "dst") ?? "(none)";
                string proto = Text(r, "protocol") ?? "(none)";
                string? gw = Text(r, "gateway");
                if (!_destinations.Contains(dst) || !seen.Add(dst))
                {
                    throw new BenchException($"after {after}: unexpected or duplicate route {dst} in table {Table}: {r}");
                }

                if (proto != Protocol.ToString(CultureInfo.InvariantCulture))
                {
                    throw new BenchException($"after {after}: route {dst} has protocol {proto}, expected {Protocol}: {r}");
                }

                if (withGateway ? gw != Gateway : gw is not null)
                {
                    throw new BenchException($"after {after}: route {dst} has gateway {gw ?? "(none)"}, expected {(withGateway ? Gateway : "none")}: {r}");
                }
            }
        }

        if (count != expected)
        {
            throw new BenchException($"after {after}: table {Table} holds {count} routes, expected {expected} (checked with ip -j route show)");
        }
    }

    /// <summary>Checks the library's own dump result: every route, once, replaced (with the gateway).</summary>
    public void VerifyDump(List<RouteEntry> routes)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (RouteEntry r in routes)
        {
            string dst = r.Destination.ToString();
            if (r.DestinationPrefixLength != 32 || !_destinations.Contains(dst) || !seen.Add(dst) || r.Protocol != Protocol
                || !GatewayAddress.Equals(r.Gateway) || r.OutputInterface != InterfaceIndex || r.Table != Table)
            {
                throw new BenchException($"RouteNetlink.Routes.List({Table}) returned an unexpected route: {r.ToIpArguments()}");
            }
        }

        if (seen.Count != Count)
        {
            throw new BenchException($"RouteNetlink.Routes.List({Table}) returned {seen.Count} routes, expected {Count}");
        }
    }

    private static string? Text(JsonElement e, string name) =>
        e.TryGetProperty(name, out JsonElement v) ? v.ValueKind == JsonValueKind.String ? v.GetString() : v.ToString() : null;
}
