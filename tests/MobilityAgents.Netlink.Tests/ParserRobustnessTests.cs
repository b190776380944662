using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Text;
using MobilityAgents.Rtnetlink;
using static MobilityAgents.Netlink.NetlinkConstants;
using static MobilityAgents.Rtnetlink.RtnetlinkConstants;

namespace MobilityAgents.Netlink.Tests;

/// <summary>
/// Malformed input must give <see cref="NetlinkParseException"/> (the documented exception) or a
/// result, never IndexOutOfRange, ArgumentOutOfRange, NullReference, Overflow, InvalidCast or a
/// hang. The corpus is real kernel replies (<see cref="KernelCaptures"/>) and requests from our own
/// encoders; they are truncated at every length, given lying length fields at every message and
/// attribute header (nested ones included), and mutated at random (seeded: MA_FUZZ_SEED,
/// MA_FUZZ_ITERATIONS). Every input goes through MessageReader.ReadAll and every decoder
/// (Link, AddressEntry, RouteEntry, RuleEntry, NeighbourEntry, NetlinkError, RouteMonitor),
/// AttributeReader at several offsets and every AttributeValue getter on every attribute.
/// </summary>
public class ParserRobustnessTests(ITestOutputHelper output)
{
    /// <summary>The seed used unless MA_FUZZ_SEED says otherwise (failures print the seed and the input).</summary>
    public const int DefaultSeed = 20_240_917;

    public const int DefaultIterations = 20_000;

    private static readonly TimeSpan HangLimit = TimeSpan.FromSeconds(60);

    // ------------------------------------------------------------------------------------------
    // Fuzzing
    // ------------------------------------------------------------------------------------------

    [Fact]
    public void Corpus_truncated_at_every_length_gives_results_or_parse_errors()
    {
        Fuzz("truncation", h =>
        {
            foreach (Sample s in Corpus.Datagrams)
            {
                for (int n = 0; n < s.Bytes.Length; n++)
                {
                    h.Datagram(s.Bytes[..n], $"{s.Name}, datagram truncated to {n} bytes");
                }
            }

            foreach (Sample s in Corpus.Messages)
            {
                for (int n = 0; n <= s.Bytes.Length; n++)
                {
                    // nlmsg_len kept consistent, so the decoders see a truncated payload.
                    byte[] b = s.Bytes[..n];
                    FixLength(b);
                    h.Datagram(b, $"{s.Name}, message truncated to {n} bytes, nlmsg_len {n}");
                }
            }
        });
    }

    [Fact]
    public void Lying_length_fields_in_every_header_give_results_or_parse_errors()
    {
        Fuzz("length lies", h =>
        {
            foreach (Sample s in Corpus.Messages)
            {
                foreach (uint lie in MessageLengthLies(s.Bytes.Length))
                {
                    byte[] b = (byte[])s.Bytes.Clone();
                    BinaryPrimitives.WriteUInt32LittleEndian(b, lie);
                    h.Datagram(b, $"{s.Name}, nlmsg_len {lie}");
                }

                foreach ((int offset, int depth) in AttributeHeaders(s.Bytes))
                {
                    int real = BinaryPrimitives.ReadUInt16LittleEndian(s.Bytes.AsSpan(offset));
                    foreach (int lie in AttributeLengthLies(real, s.Bytes.Length - offset))
                    {
                        byte[] b = (byte[])s.Bytes.Clone();
                        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(offset), (ushort)lie);
                        h.Datagram(b, $"{s.Name}, nla_len {real} -> {lie} at offset {offset} (nesting depth {depth})");
                    }
                }
            }
        });
    }

    [Fact]
    public void Random_mutations_of_the_corpus_and_random_buffers_give_results_or_parse_errors()
    {
        int seed = EnvInt("MA_FUZZ_SEED", DefaultSeed);
        int iterations = EnvInt("MA_FUZZ_ITERATIONS", DefaultIterations);
        Fuzz($"random (seed {seed}, set MA_FUZZ_SEED to change; {iterations} iterations, MA_FUZZ_ITERATIONS)", h =>
        {
            var rng = new Random(seed);
            List<Sample> messages = Corpus.Messages;
            List<Sample> datagrams = Corpus.Datagrams;
            for (int i = 0; i < iterations; i++)
            {
                int kind = rng.Next(100);
                if (kind < 5)
                {
                    byte[] b = new byte[rng.Next(0, 200)];
                    rng.NextBytes(b);
                    h.Datagram(b, $"iteration {i}: random bytes");
                }
                else if (kind < 15)
                {
                    h.Datagram(RandomMessage(rng), $"iteration {i}: random attributes");
                }
                else if (kind < 20)
                {
                    // A multi-message datagram mutated as a whole (later messages behind a bad one).
                    Sample s = datagrams[rng.Next(datagrams.Count)];
                    byte[] b = (byte[])s.Bytes.Clone();
                    string what = Mutate(rng, ref b);
                    h.Datagram(b, $"iteration {i}: {s.Name}, datagram, {what}");
                }
                else
                {
                    Sample s = messages[rng.Next(messages.Count)];
                    byte[] b = (byte[])s.Bytes.Clone();
                    var what = new StringBuilder();
                    int n = 1 + rng.Next(3);
                    for (int k = 0; k < n; k++)
                    {
                        what.Append(k == 0 ? "" : "; ").Append(Mutate(rng, ref b));
                    }

                    if (rng.Next(4) != 0 && !what.ToString().Contains("nlmsg_len", StringComparison.Ordinal))
                    {
                        // Keep nlmsg_len consistent most of the time, so the mutation reaches the decoders.
                        FixLength(b);
                    }

                    h.Datagram(b, $"iteration {i}: {s.Name}, {what}");
                }
            }
        });
    }

    private void Fuzz(string name, Action<Harness> body)
    {
        var h = new Harness();
        Exception? crash = null;
        var sw = Stopwatch.StartNew();
        var t = new Thread(() =>
        {
            try
            {
                body(h);
            }
            catch (Exception e)
            {
                crash = e;
            }
        })
        { IsBackground = true, Name = "fuzz " + name };
        t.Start();
        if (!t.Join(HangLimit))
        {
            Assert.Fail($"{name}: still running after {HangLimit.TotalSeconds} s (a parser loop that does not advance?); " +
                $"input: {h.Origin}: {Convert.ToHexString(h.Current ?? [])}");
        }

        string summary = $"{name}: {h.Inputs} inputs ({h.Accepted} datagrams accepted by MessageReader), " +
            $"{h.Calls} decoder/getter calls, {h.ParseErrors} NetlinkParseExceptions, {sw.Elapsed.TotalSeconds:F2} s";
        output.WriteLine(summary);
        TestContext.Current.SendDiagnosticMessage(summary);
        if (crash is not null)
        {
            throw new InvalidOperationException($"{name}: the fuzz harness itself failed", crash);
        }

        Assert.True(h.Failures.Count == 0,
            $"{name}: {h.FailureCount} inputs made a parser throw something other than NetlinkParseException " +
            $"({h.Failures.Count} distinct):\n\n{string.Join("\n\n", h.Failures)}");
    }

    private static int EnvInt(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : fallback;

    /// <summary>Runs every parser on an input and records anything but a result or a NetlinkParseException.</summary>
    private sealed class Harness
    {
        private readonly Dictionary<string, string> _failures = [];
        private readonly HashSet<(string, int)> _shortGetters = [];
        private byte[]? _current;
        private string _origin = "";

        public int Inputs { get; private set; }

        public int Accepted { get; private set; }

        public long Calls { get; private set; }

        public long ParseErrors { get; private set; }

        public int FailureCount { get; private set; }

        public IReadOnlyCollection<string> Failures => _failures.Values;

        public byte[]? Current => Volatile.Read(ref _current);

        public string Origin => Volatile.Read(ref _origin);

        public void Datagram(byte[] datagram, string origin)
        {
            Volatile.Write(ref _current, datagram);
            Volatile.Write(ref _origin, origin);
            Inputs++;
            List<NetlinkMessage>? messages = null;
            Run("MessageReader.ReadAll", () => messages = MessageReader.ReadAll(datagram));
            if (messages is null)
            {
                return;
            }

            Accepted++;
            int end = 0;
            foreach (NetlinkMessage m in messages)
            {
                if (m.Header.Length > datagram.Length || m.Payload.Length != m.Header.Length - NetlinkMessageHeader.Size)
                {
                    Fail("MessageReader.ReadAll", new InvalidOperationException($"message of nlmsg_len {m.Header.Length} has a {m.Payload.Length}-byte payload in a {datagram.Length}-byte datagram"));
                }

                end += Align.NlmsgAlign((int)m.Header.Length);
                Message(m);
            }

            if (messages.Count > datagram.Length / NetlinkMessageHeader.Size || end < datagram.Length)
            {
                Fail("MessageReader.ReadAll", new InvalidOperationException($"{messages.Count} messages covering {end} bytes from a {datagram.Length}-byte datagram"));
            }
        }

        private void Message(NetlinkMessage m)
        {
            Run("Link.Decode", () =>
            {
                Link l = Link.Decode(m);
                _ = l.ToString();
                _ = l.Ipip?.ToIpArguments();
            });
            Run("AddressEntry.Decode", () =>
            {
                AddressEntry a = AddressEntry.Decode(m);
                _ = a.ToIpArguments();
                _ = a.ToString();
            });
            Run("RouteEntry.Decode", () =>
            {
                RouteEntry r = RouteEntry.Decode(m);
                _ = r.ToIpArguments();
                _ = r.EffectiveScope;
            });
            Run("RuleEntry.Decode", () => _ = RuleEntry.Decode(m).ToIpArguments());
            Run("NeighbourEntry.Decode", () => _ = NeighbourEntry.Decode(m).ToIpArguments());
            Run("RouteMonitor.Decode", () => _ = RouteMonitor.Decode(m)?.ToString());
            Run("NetlinkError.Decode", () => _ = NetlinkError.Decode(m));
            Run("NetlinkError.DecodeDone", () => _ = NetlinkError.DecodeDone(m));
            foreach (ushort extra in (ushort[])[NLM_F_ACK_TLVS, NLM_F_ACK_TLVS | NLM_F_CAPPED])
            {
                NetlinkMessage x = m with { Header = m.Header with { Flags = (ushort)(m.Header.Flags | extra) } };
                Run("NetlinkError.Decode", () => _ = NetlinkError.Decode(x));
                Run("NetlinkError.DecodeDone", () => _ = NetlinkError.DecodeDone(x));
            }

            // The attributes after each family header size (0: none, 4: nlmsgerr's int / NLMSG_DONE,
            // 8: ifaddrmsg, 12: rtmsg, fib_rule_hdr, ndmsg, 16: ifinfomsg, 20: struct nlmsgerr).
            foreach (int offset in (int[])[0, 4, 8, 12, 16, 20])
            {
                if (offset <= m.Payload.Length)
                {
                    Attributes(m.Payload[offset..], 0);
                }
            }
        }

        private void Attributes(ReadOnlyMemory<byte> buffer, int depth)
        {
            if (depth == 0)
            {
                Run("AttributeReader.ReadAll", () => _ = AttributeReader.ReadAll(buffer, "fuzz"));
            }

            var seen = new List<NetlinkAttribute>();
            Run("AttributeReader.Next", () =>
            {
                var r = new AttributeReader(buffer, "fuzz");
                while (r.Next())
                {
                    seen.Add(r.Current);
                    if (seen.Count > buffer.Length / Align.NLA_HDRLEN)
                    {
                        throw new InvalidOperationException($"AttributeReader returned {seen.Count} attributes from {buffer.Length} bytes: it does not advance");
                    }
                }
            });
            foreach (NetlinkAttribute a in seen)
            {
                if (a.Payload.Length > buffer.Length - Align.NLA_HDRLEN)
                {
                    Fail("AttributeReader.Next", new InvalidOperationException($"attribute payload of {a.Payload.Length} bytes from a {buffer.Length}-byte buffer"));
                }

                Getter("AttributeValue.U8", a, 1, () => _ = a.U8());
                Getter("AttributeValue.U16", a, 2, () => _ = a.U16());
                Getter("AttributeValue.U16BigEndian", a, 2, () => _ = a.U16BigEndian());
                Getter("AttributeValue.U32", a, 4, () => _ = a.U32());
                Getter("AttributeValue.I32", a, 4, () => _ = a.I32());
                Getter("AttributeValue.U32BigEndian", a, 4, () => _ = a.U32BigEndian());
                Getter("AttributeValue.U64", a, 8, () => _ = a.U64());
                Getter("AttributeValue.Address", a, a.Payload.Length is 4 or 16 ? 0 : int.MaxValue, () => _ = a.Address());
                Run("AttributeValue.String", () => _ = a.String());
                _ = a.RawType;

                // Into anything that is marked nested or starts like an attribute (a valid-looking first
                // nla_len), directly or after a struct ifinfomsg (VETH_INFO_PEER).
                if (depth < 3)
                {
                    if (a.Nested || LooksLikeAttributes(a.Payload.Span))
                    {
                        Attributes(a.Payload, depth + 1);
                    }

                    if (a.Payload.Length >= SizeofIfinfomsg + Align.NLA_HDRLEN && LooksLikeAttributes(a.Payload.Span[SizeofIfinfomsg..]))
                    {
                        Attributes(a.Payload[SizeofIfinfomsg..], depth + 1);
                    }
                }
            }
        }

        private static bool LooksLikeAttributes(ReadOnlySpan<byte> b) =>
            b.Length >= Align.NLA_HDRLEN && BinaryPrimitives.ReadUInt16LittleEndian(b) is var len && len >= Align.NLA_HDRLEN && len <= b.Length;

        /// <summary>
        /// A typed getter: always when the payload is big enough; when it is too short (a
        /// NetlinkParseException, and exceptions are what makes fuzzing slow) once per getter and
        /// payload length, which is all its behaviour depends on.
        /// </summary>
        private void Getter(string what, NetlinkAttribute a, int needed, Action get)
        {
            if (a.Payload.Length >= needed || _shortGetters.Add((what, a.Payload.Length)))
            {
                Run(what, get);
            }
        }

        private void Run(string what, Action parse)
        {
            Calls++;
            try
            {
                parse();
            }
            catch (NetlinkParseException e)
            {
                ParseErrors++;
                if (string.IsNullOrEmpty(e.Context) || !e.Message.StartsWith("malformed netlink data in ", StringComparison.Ordinal))
                {
                    Fail(what, new InvalidOperationException($"NetlinkParseException without a useful message: '{e.Message}'", e));
                }
            }
#pragma warning disable CA1031 // Anything else is exactly what this harness looks for.
            catch (Exception e)
#pragma warning restore CA1031
            {
                Fail(what, e);
            }
        }

        private void Fail(string what, Exception e)
        {
            FailureCount++;
            string frame = e.StackTrace?.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Contains("MobilityAgents.", StringComparison.Ordinal)) ?? "";
            string signature = $"{what}: {e.GetType().FullName} {frame}";
            if (_failures.Count < 20 && !_failures.ContainsKey(signature))
            {
                byte[] input = Current ?? [];
                _failures[signature] = $"{signature}\n  message: {e.Message}\n  input: {Origin}\n  bytes ({input.Length}): {Convert.ToHexString(input)}\n  {e}";
            }
        }
    }

    // ------------------------------------------------------------------------------------------
    // Mutations
    // ------------------------------------------------------------------------------------------

    private static readonly byte[] InterestingBytes = [0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 0x7f, 0x80, 0xfe, 0xff];

    private static readonly ushort[] MessageTypes =
    [
        NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN, RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_DELADDR,
        RTM_NEWROUTE, RTM_DELROUTE, RTM_NEWRULE, RTM_DELRULE, RTM_NEWNEIGH, RTM_DELNEIGH, 0xffff,
    ];

    private static readonly int[] FamilyHeaderSizes = [0, 4, 8, 12, 16, 20];

    private static readonly int[] PayloadSizes = [0, 1, 2, 3, 4, 5, 6, 8, 12, 16, 17, 20];

    private static readonly ushort[] MessageFlags = [0, NLM_F_MULTI, NLM_F_ACK_TLVS, NLM_F_ACK_TLVS | NLM_F_CAPPED, NLM_F_CAPPED, 0xffff];

    /// <summary>Applies one random mutation; returns what it did (for the failure report).</summary>
    private static string Mutate(Random rng, ref byte[] b)
    {
        if (b.Length == 0)
        {
            b = [(byte)rng.Next(256)];
            return "grown from nothing";
        }

        switch (rng.Next(12))
        {
            case 0:
            {
                int n = 1 + rng.Next(4);
                for (int k = 0; k < n; k++)
                {
                    b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
                }

                return $"{n} bit flips";
            }

            case 1:
            {
                int n = 1 + rng.Next(4);
                for (int k = 0; k < n; k++)
                {
                    b[rng.Next(b.Length)] = rng.Next(2) == 0 ? InterestingBytes[rng.Next(InterestingBytes.Length)] : (byte)rng.Next(256);
                }

                return $"{n} bytes set";
            }

            case 2:
            {
                int n = rng.Next(b.Length);
                b = b[..n];
                return $"truncated to {n}";
            }

            case 3:
            case 4:
            {
                List<(int Offset, int Depth)> headers = AttributeHeaders(b);
                List<(int Offset, int Depth)> nested = headers.Where(x => x.Depth > 0).ToList();
                List<(int Offset, int Depth)> pick = nested.Count > 0 && rng.Next(2) == 0 ? nested : headers;
                if (pick.Count == 0)
                {
                    goto case 0;
                }

                (int offset, int depth) = pick[rng.Next(pick.Count)];
                int real = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(offset));
                int[] lies = AttributeLengthLies(real, b.Length - offset).ToArray();
                int lie = rng.Next(4) == 0 ? rng.Next(65536) : lies[rng.Next(lies.Length)];
                BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(offset), (ushort)lie);
                return $"nla_len {real} -> {lie} at offset {offset} (nesting depth {depth})";
            }

            case 5:
            {
                if (b.Length < 4)
                {
                    goto case 0;
                }

                uint[] lies = MessageLengthLies(b.Length).ToArray();
                uint lie = rng.Next(4) == 0 ? (uint)rng.Next() : lies[rng.Next(lies.Length)];
                BinaryPrimitives.WriteUInt32LittleEndian(b, lie);
                return $"nlmsg_len {lie}";
            }

            case 6:
            {
                List<(int Offset, int Depth)> headers = AttributeHeaders(b);
                if (headers.Count == 0)
                {
                    goto case 1;
                }

                int offset = headers[rng.Next(headers.Count)].Offset;
                ushort type = (ushort)(rng.Next(64) | (rng.Next(3) == 0 ? NLA_F_NESTED : 0) | (rng.Next(8) == 0 ? NLA_F_NET_BYTEORDER : 0));
                BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(offset + 2), type);
                return $"nla_type at offset {offset} -> 0x{type:x}";
            }

            case 7:
            {
                if (b.Length < 8)
                {
                    goto case 0;
                }

                ushort type = MessageTypes[rng.Next(MessageTypes.Length)];
                ushort flags = MessageFlags[rng.Next(MessageFlags.Length)];
                BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(4), type);
                BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(6), flags);
                return $"nlmsg_type {type}, nlmsg_flags 0x{flags:x}";
            }

            case 8:
            {
                int at = rng.Next(b.Length + 1);
                byte[] ins = new byte[1 + rng.Next(8)];
                rng.NextBytes(ins);
                b = [.. b[..at], .. ins, .. b[at..]];
                return $"{ins.Length} bytes inserted at {at}";
            }

            case 9:
            {
                int at = rng.Next(b.Length);
                int n = 1 + rng.Next(Math.Min(16, b.Length - at));
                b = [.. b[..at], .. b[(at + n)..]];
                return $"{n} bytes deleted at {at}";
            }

            case 10:
            {
                // Repeat an attribute at the end (decoders must cope with duplicates).
                List<(int Offset, int Depth)> headers = AttributeHeaders(b).Where(x => x.Depth == 0).ToList();
                if (headers.Count == 0)
                {
                    goto case 8;
                }

                int offset = headers[rng.Next(headers.Count)].Offset;
                int len = Math.Min(Align.NlaAlign(BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(offset))), b.Length - offset);
                b = [.. b, .. new byte[Align.NlmsgAlign(b.Length) - b.Length], .. b[offset..(offset + len)]];
                return $"attribute at offset {offset} repeated at the end";
            }

            default:
            {
                // A u32 lie anywhere 4-aligned: family header fields, the echoed request's nlmsg_len in NLMSG_ERROR, ...
                if (b.Length < 4)
                {
                    goto case 0;
                }

                int at = rng.Next(b.Length / 4) * 4;
                uint[] values = [0, 1, 3, 16, 0x7fffffff, 0x80000000, 0xfffffffc, 0xffffffff, (uint)b.Length, (uint)rng.Next()];
                uint v = values[rng.Next(values.Length)];
                BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), v);
                return $"u32 at offset {at} -> {v}";
            }
        }
    }

    /// <summary>A message of random type and flags whose payload is a random family header and random attributes (some with lying lengths, some nested).</summary>
    private static byte[] RandomMessage(Random rng)
    {
        var b = new List<byte>(new byte[NetlinkMessageHeader.Size]);
        int family = FamilyHeaderSizes[rng.Next(FamilyHeaderSizes.Length)];
        for (int i = 0; i < family; i++)
        {
            b.Add(rng.Next(3) == 0 ? (byte)rng.Next(256) : (byte)0);
        }

        int attributes = rng.Next(8);
        for (int k = 0; k < attributes; k++)
        {
            int size = PayloadSizes[rng.Next(PayloadSizes.Length)];
            int len = rng.Next(6) == 0 ? rng.Next(0, 64) : Align.NLA_HDRLEN + size;
            ushort type = (ushort)(rng.Next(40) | (rng.Next(4) == 0 ? NLA_F_NESTED : 0));
            b.AddRange(BitConverter.GetBytes((ushort)len));
            b.AddRange(BitConverter.GetBytes(type));
            if (size >= 8 && rng.Next(2) == 0)
            {
                // Something nested-looking inside: an attribute header with a random length.
                b.AddRange(BitConverter.GetBytes((ushort)rng.Next(0, 24)));
                b.AddRange(BitConverter.GetBytes((ushort)rng.Next(40)));
                size -= 4;
            }

            for (int i = 0; i < size; i++)
            {
                b.Add((byte)rng.Next(256));
            }

            while (rng.Next(3) != 0 && b.Count % 4 != 0)
            {
                b.Add(0);
            }
        }

        byte[] m = [.. b];
        new NetlinkMessageHeader((uint)m.Length, MessageTypes[rng.Next(MessageTypes.Length)], MessageFlags[rng.Next(MessageFlags.Length)], 1, 0).WriteLittleEndian(m);
        return m;
    }

    private static IEnumerable<uint> MessageLengthLies(int real) =>
        new uint[] { 0, 1, 3, 4, 15, 16, 17, (uint)real - 1, (uint)real + 1, (uint)real + 4, 0x7fffffff, 0x80000000, 0xfffffff0, 0xffffffff }.Distinct();

    private static IEnumerable<int> AttributeLengthLies(int real, int left) =>
        new[] { 0, 1, 2, 3, 4, 5, 7, 8, real - 1, real + 1, real + 3, real + 4, left, left + 1, 0x7fff, 0x8000, 0xffff }
            .Where(x => x is >= 0 and <= 0xffff && x != real).Distinct();

    /// <summary>Sets nlmsg_len to the buffer's length (when there is room for it).</summary>
    private static void FixLength(byte[] b)
    {
        if (b.Length >= 4)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)b.Length);
        }
    }

    /// <summary>
    /// Where the attribute headers of a single-message buffer are (offset, nesting depth), found
    /// by walking it leniently: the top level after the family header, and any payload that itself
    /// parses cleanly as attributes (directly, or after a struct ifinfomsg as in VETH_INFO_PEER).
    /// </summary>
    private static List<(int Offset, int Depth)> AttributeHeaders(byte[] b)
    {
        var list = new List<(int, int)>();
        if (b.Length < NetlinkMessageHeader.Size)
        {
            return list;
        }

        var h = NetlinkMessageHeader.ReadLittleEndian(b);
        int end = (int)Math.Min(h.Length, (uint)b.Length);
        if (h.Type == NLMSG_ERROR)
        {
            // struct nlmsgerr, the echoed request's own attributes (unless capped), then the ext-ack TLVs.
            int req = NetlinkMessageHeader.Size + 4;
            if (end < req + NetlinkMessageHeader.Size)
            {
                return list;
            }

            var echoed = NetlinkMessageHeader.ReadLittleEndian(b.AsSpan(req));
            int tlv = h.HasFlag(NLM_F_CAPPED) ? req + NetlinkMessageHeader.Size : req + (int)Math.Min(Align.NlmsgAlign((int)Math.Min(echoed.Length, 0x10000)), end);
            if (!h.HasFlag(NLM_F_CAPPED))
            {
                Collect(b, req + NetlinkMessageHeader.Size + FamilyHeaderSize(echoed.Type), Math.Min(tlv, end), 0, list);
            }

            if (h.HasFlag(NLM_F_ACK_TLVS))
            {
                Collect(b, tlv, end, 0, list);
            }

            return list;
        }

        Collect(b, NetlinkMessageHeader.Size + FamilyHeaderSize(h.Type), end, 0, list);
        return list;
    }

    private static int FamilyHeaderSize(ushort type) => type switch
    {
        RTM_NEWLINK or RTM_DELLINK or RTM_GETLINK or RTM_SETLINK => SizeofIfinfomsg,
        RTM_NEWADDR or RTM_DELADDR or RTM_GETADDR => SizeofIfaddrmsg,
        RTM_NEWROUTE or RTM_DELROUTE or RTM_GETROUTE => SizeofRtmsg,
        RTM_NEWRULE or RTM_DELRULE or RTM_GETRULE => SizeofFibRuleHdr,
        RTM_NEWNEIGH or RTM_DELNEIGH or RTM_GETNEIGH => SizeofNdmsg,
        NLMSG_DONE => 4,
        _ => 0,
    };

    private static void Collect(byte[] b, int start, int end, int depth, List<(int, int)> list)
    {
        if (start < 0 || end > b.Length || !WalksCleanly(b, start, end))
        {
            return;
        }

        int o = start;
        while (o + Align.NLA_HDRLEN <= end)
        {
            int len = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(o));
            list.Add((o, depth));
            int ps = o + Align.NLA_HDRLEN, pe = o + len;
            if (depth < 4 && pe - ps >= Align.NLA_HDRLEN)
            {
                if (WalksCleanly(b, ps, pe))
                {
                    Collect(b, ps, pe, depth + 1, list);
                }
                else if (pe - ps >= SizeofIfinfomsg + Align.NLA_HDRLEN && WalksCleanly(b, ps + SizeofIfinfomsg, pe))
                {
                    Collect(b, ps + SizeofIfinfomsg, pe, depth + 1, list);
                }
            }

            o += Align.NlaAlign(len);
        }
    }

    private static bool WalksCleanly(byte[] b, int start, int end)
    {
        int o = start;
        int n = 0;
        while (o < end)
        {
            if (end - o < Align.NLA_HDRLEN)
            {
                return false;
            }

            int len = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(o));
            if (len < Align.NLA_HDRLEN || len > end - o)
            {
                return false;
            }

            o = Math.Min(end, o + Align.NlaAlign(len));
            n++;
        }

        return n > 0;
    }

    // ------------------------------------------------------------------------------------------
    // The corpus
    // ------------------------------------------------------------------------------------------

    [Fact]
    public void Corpus_kernel_captures_decode_to_what_was_configured()
    {
        List<NetlinkMessage> all = KernelCaptures.All.SelectMany(c => MessageReader.ReadAll(c.Bytes)).ToList();

        List<Link> links = all.Where(m => m.Type == RTM_NEWLINK).Select(Link.Decode).ToList();
        Assert.Equal(["lo", "v1", "v0"], links.Select(l => l.Name));
        Link v0 = links.Single(l => l.Name == "v0");
        Assert.Equal("veth", v0.Kind);
        Assert.Equal("ma:test link", v0.Alias);
        Assert.Equal(1500, v0.Mtu);
        Assert.True(v0.IsUp);
        Assert.Equal(links.Single(l => l.Name == "v1").Index, v0.ParentIndex);

        List<AddressEntry> addresses = all.Where(m => m.Type == RTM_NEWADDR).Select(AddressEntry.Decode).ToList();
        AddressEntry a = addresses.Single(x => x.Local.Equals(IPAddress.Parse("192.0.2.1")));
        Assert.Equal((byte)24, a.PrefixLength);
        Assert.Equal(IPAddress.Parse("192.0.2.255"), a.Broadcast);
        Assert.Equal("v0:lab", a.Label);
        Assert.Equal(v0.Index, a.InterfaceIndex);
        Assert.Equal(IPAddress.Parse("10.0.0.2"), addresses.Single(x => x.Local.Equals(IPAddress.Parse("10.0.0.1"))).Peer);
        Assert.Contains(addresses, x => x.Local.Equals(IPAddress.Parse("2001:db8::1")) && (x.Flags & IFA_F_NODAD) != 0);

        List<RouteEntry> routes = all.Where(m => m.Type == RTM_NEWROUTE).Select(RouteEntry.Decode).ToList();
        RouteEntry r = routes.Single(x => x.Destination.Equals(IPAddress.Parse("203.0.113.0")));
        Assert.Equal((byte)24, r.DestinationPrefixLength);
        Assert.Equal(IPAddress.Parse("192.0.2.254"), r.Gateway);
        Assert.Equal(v0.Index, r.OutputInterface);
        Assert.Equal(IPAddress.Parse("192.0.2.1"), r.PreferredSource);
        Assert.Equal((100u, (byte)77, 10u, 1400u), (r.Table, r.Protocol, r.Metric, r.Mtu));
        RouteEntry encap = routes.Single(x => x.Destination.Equals(IPAddress.Parse("198.18.0.0")));
        Assert.Equal(IPAddress.Parse("192.0.2.9"), encap.EncapDestination);
        Assert.Null(encap.EncapSource);
        Assert.Equal((byte)7, encap.EncapTtl);
        Assert.Equal(RTN_BLACKHOLE, routes.Single(x => x.Destination.Equals(IPAddress.Parse("198.51.100.0"))).Type);
        Assert.Contains(routes, x => x.Destination.Equals(IPAddress.Parse("2001:db8::")) && x.DestinationPrefixLength == 64);

        List<RuleEntry> rules = all.Where(m => m.Type == RTM_NEWRULE).Select(RuleEntry.Decode).ToList();
        Assert.Equal([0u, 1000u, 1001u, 32766u, 32767u], rules.Select(x => x.Priority ?? 0));
        Assert.Equal(IPAddress.Parse("192.0.2.10"), rules[1].Source);
        Assert.Equal((byte)32, rules[1].SourcePrefixLength);
        Assert.Equal((100u, (byte?)77), (rules[1].Table, rules[1].Protocol));
        RuleEntry not = rules[2];
        Assert.True(not.Invert);
        Assert.Null(not.Source);
        Assert.Equal((0x10u, 0xffu), (not.FwMark, not.FwMask));
        Assert.Equal(("v0", "v1"), (not.InputInterface, not.OutputInterface));
        Assert.Equal((100u, 0u), (not.Table, not.SuppressPrefixLength));

        List<NeighbourEntry> neighbours = all.Where(m => m.Type == RTM_NEWNEIGH).Select(NeighbourEntry.Decode).ToList();
        Assert.Equal(PhysicalAddress.Parse("02-00-00-00-00-14"), neighbours.Single(n => !n.Proxy).LinkLayerAddress);
        Assert.Equal(IPAddress.Parse("192.0.2.30"), neighbours.Single(n => n.Proxy).Destination);

        List<NetlinkError> errors = all.Where(m => m.Type == NLMSG_ERROR).Select(NetlinkError.Decode).ToList();
        Assert.Equal([Errno.ENODEV, Errno.ERANGE, Errno.ERANGE, 0], errors.Select(e => e.Errno));
        Assert.All(errors, e => Assert.Equal(101u, e.RequestHeader.Sequence));
        Assert.False(string.IsNullOrEmpty(errors[1].Message));
        Assert.Equal(errors[1].Message, errors[2].Message);
        Assert.NotNull(errors[1].Offset);
        Assert.All(all.Where(m => m.Type == NLMSG_DONE), m => Assert.Equal(0, NetlinkError.DecodeDone(m).Errno));
    }

    private sealed record Sample(string Name, byte[] Bytes);

    /// <summary>The fuzz corpus: kernel captures and our encoders' requests, as datagrams and split into single messages.</summary>
    private static class Corpus
    {
        public static readonly List<Sample> Datagrams = [.. KernelCaptures.All.Select(c => new Sample("kernel: " + c.Name, c.Bytes)), .. Encoded()];

        public static readonly List<Sample> Messages = Datagrams.SelectMany(Split).ToList();

        private static IEnumerable<Sample> Split(Sample s)
        {
            int i = 0;
            foreach (NetlinkMessage m in MessageReader.ReadAll(s.Bytes))
            {
                byte[] one = new byte[m.Header.Length];
                m.Header.WriteLittleEndian(one);
                m.Payload.Span.CopyTo(one.AsSpan(NetlinkMessageHeader.Size));
                yield return new Sample($"{s.Name} [message {i++}, {MessageName(m.Type)}]", one);
            }
        }

        private static string MessageName(ushort t) => typeof(RtnetlinkConstants).GetFields()
            .Concat(typeof(NetlinkConstants).GetFields())
            .FirstOrDefault(f => (f.Name.StartsWith("RTM_", StringComparison.Ordinal) || f.Name.StartsWith("NLMSG_", StringComparison.Ordinal)) && f.GetRawConstantValue() is ushort v && v == t)?.Name
            ?? t.ToString(CultureInfo.InvariantCulture);

        private delegate void Build(ref NetlinkWriter w);

        private static Sample Encode(string name, Build build)
        {
            byte[] buf = new byte[4096];
            var w = new NetlinkWriter(buf);
            build(ref w);
            return new Sample("encoder: " + name, buf[..w.Length]);
        }

        private static IEnumerable<Sample> Encoded()
        {
            static IPAddress Ip(string s) => IPAddress.Parse(s);
            var address = new AddressEntry
            {
                InterfaceIndex = 3, Local = Ip("192.0.2.1"), PrefixLength = 24, Broadcast = Ip("192.0.2.255"),
                Label = "v0:lab", Flags = IFA_F_NOPREFIXROUTE | IFA_F_NODAD, Protocol = 77,
            };
            var peer = new AddressEntry { InterfaceIndex = 4, Local = Ip("10.0.0.1"), Peer = Ip("10.0.0.2"), PrefixLength = 32 };
            var route = new RouteEntry
            {
                Destination = Ip("198.18.0.0"), DestinationPrefixLength = 16, Table = 1000, Protocol = 77,
                Gateway = Ip("192.0.2.254"), OutputInterface = 3, PreferredSource = Ip("192.0.2.1"), Metric = 10, Mtu = 1400,
                EncapDestination = Ip("203.0.113.9"), EncapSource = Ip("203.0.113.1"), EncapTtl = 7,
            };
            var route6 = new RouteEntry { Destination = Ip("2001:db8::"), DestinationPrefixLength = 32, Type = RTN_UNREACHABLE, Table = 100 };
            var rule = new RuleEntry
            {
                Source = Ip("192.0.2.0"), SourcePrefixLength = 24, Destination = Ip("198.51.100.7"), DestinationPrefixLength = 32,
                FwMark = 0x10, FwMask = 0xff, InputInterface = "v0", OutputInterface = "v1", Table = 1000, Priority = 1001,
                Protocol = 77, SuppressPrefixLength = 0, Invert = true,
            };
            var neighbour = new NeighbourEntry { InterfaceIndex = 3, Destination = Ip("192.0.2.20"), LinkLayerAddress = PhysicalAddress.Parse("02-00-00-00-00-14"), Protocol = 77 };
            var proxy = new NeighbourEntry { InterfaceIndex = 3, Destination = Ip("192.0.2.30"), Proxy = true };
            var ipip = new IpipParameters
            {
                Local = Ip("192.0.2.1"), Remote = Ip("198.51.100.1"), Ttl = 64, Tos = 1, UnderlyingLinkIndex = 2, FwMark = 0x42,
                EncapType = 1, EncapSourcePort = 5555, EncapDestinationPort = 4444,
            };

            yield return Encode("ip addr add 192.0.2.1/24 brd + label v0:lab noprefixroute nodad proto 77 dev v0", (ref NetlinkWriter w) => address.Encode(ref w, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL));
            yield return Encode("ip addr add 10.0.0.1 peer 10.0.0.2/32 dev v1", (ref NetlinkWriter w) => peer.Encode(ref w, RTM_NEWADDR, NLM_F_CREATE));
            yield return Encode("ip route add 198.18.0.0/16 encap ip ... via ... mtu 1400", (ref NetlinkWriter w) => route.Encode(ref w, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL));
            yield return Encode("ip -6 route add unreachable 2001:db8::/32 table 100", (ref NetlinkWriter w) => route6.Encode(ref w, RTM_NEWROUTE, NLM_F_CREATE));
            yield return Encode("ip rule add not from ... suppress_prefixlength 0", (ref NetlinkWriter w) => rule.Encode(ref w, RTM_NEWRULE, NLM_F_CREATE));
            yield return Encode("ip neigh add 192.0.2.20 lladdr ... + ip neigh add proxy 192.0.2.30", (ref NetlinkWriter w) =>
            {
                neighbour.Encode(ref w, RTM_NEWNEIGH, NLM_F_CREATE);
                proxy.Encode(ref w, RTM_NEWNEIGH, NLM_F_CREATE);
            });
            yield return Encode("ipip link with IFLA_LINKINFO/IFLA_INFO_DATA", (ref NetlinkWriter w) =>
            {
                int m = w.BeginMessage(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
                w.Reserve(SizeofIfinfomsg)[4] = 9;
                w.WriteString(IFLA_IFNAME, "ma-ipip0");
                w.WriteU32(IFLA_MTU, 1480);
                w.WriteString(IFLA_IFALIAS, "ma:tunnel");
                w.WriteBytes(IFLA_ADDRESS, [192, 0, 2, 1]);
                w.WriteI32(IFLA_LINK, 2);
                w.WriteU8(IFLA_OPERSTATE, 6);
                int info = w.BeginNestedLegacy(IFLA_LINKINFO);
                w.WriteString(IFLA_INFO_KIND, "ipip");
                int data = w.BeginNestedLegacy(IFLA_INFO_DATA);
                ipip.Encode(ref w);
                w.EndNested(data);
                w.EndNested(info);
                w.EndMessage(m);
                m = w.BeginMessage(RTM_NEWLINK, 0);
                w.Reserve(SizeofIfinfomsg);
                info = w.BeginNested(IFLA_LINKINFO);
                w.WriteString(IFLA_INFO_KIND, "ipip");
                data = w.BeginNested(IFLA_INFO_DATA);
                new IpipParameters { External = true }.Encode(ref w);
                w.EndNested(data);
                w.EndNested(info);
                w.EndMessage(m);
            });
            yield return Encode("ip link add v0 type veth peer name v1", (ref NetlinkWriter w) =>
            {
                int m = w.BeginMessage(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
                w.Reserve(SizeofIfinfomsg);
                w.WriteString(IFLA_IFNAME, "v0");
                int info = w.BeginNestedLegacy(IFLA_LINKINFO);
                w.WriteString(IFLA_INFO_KIND, "veth");
                int data = w.BeginNestedLegacy(IFLA_INFO_DATA);
                int peerAttr = w.BeginNestedLegacy(VETH_INFO_PEER);
                w.Reserve(SizeofIfinfomsg);
                w.WriteString(IFLA_IFNAME, "v1");
                w.WriteU32(IFLA_NET_NS_FD, 7);
                w.EndNested(peerAttr);
                w.EndNested(data);
                w.EndNested(info);
                w.EndMessage(m);
            });
            yield return Encode("NLMSG_DONE with an error and an ext-ack message", (ref NetlinkWriter w) =>
            {
                int m = w.BeginMessage(NLMSG_DONE, NLM_F_MULTI | NLM_F_ACK_TLVS);
                BinaryPrimitives.WriteInt32LittleEndian(w.Reserve(4), -Errno.EINVAL);
                w.WriteString(NLMSGERR_ATTR_MSG, "Invalid data after header in dump request");
                w.EndMessage(m);
            });
        }
    }

    // ------------------------------------------------------------------------------------------
    // Deterministic edge cases
    // ------------------------------------------------------------------------------------------

    [Fact]
    public void An_empty_datagram_has_no_messages()
    {
        Assert.Empty(MessageReader.ReadAll(ReadOnlyMemory<byte>.Empty));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(15)]
    public void A_truncated_nlmsghdr_is_a_parse_error(int length)
    {
        byte[] b = new byte[length];
        b[0] = 16;
        NetlinkParseException e = Assert.Throws<NetlinkParseException>(() => MessageReader.ReadAll(b));
        Assert.Equal(0, e.Offset);
        Assert.Contains($"{length} trailing bytes are too short for a message header", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(1u)]
    [InlineData(15u)]
    public void An_nlmsg_len_shorter_than_the_header_is_a_parse_error(uint nlmsgLen)
    {
        byte[] first = Message(RTM_NEWLINK, new byte[SizeofIfinfomsg]);
        byte[] second = Message(RTM_NEWLINK, new byte[SizeofIfinfomsg]);
        BinaryPrimitives.WriteUInt32LittleEndian(second, nlmsgLen);
        NetlinkParseException e = Assert.Throws<NetlinkParseException>(() => MessageReader.ReadAll(Concat(first, second)));
        Assert.Equal(first.Length, e.Offset);
        Assert.Contains($"nlmsg_len {nlmsgLen} but 32 bytes remain", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(33u)]
    [InlineData(0x7fffffffu)]
    [InlineData(0x80000000u)]
    [InlineData(0xffffffffu)]
    public void An_nlmsg_len_beyond_the_datagram_is_a_parse_error(uint nlmsgLen)
    {
        byte[] b = Message(RTM_NEWLINK, new byte[SizeofIfinfomsg]);
        BinaryPrimitives.WriteUInt32LittleEndian(b, nlmsgLen);
        NetlinkParseException e = Assert.Throws<NetlinkParseException>(() => MessageReader.ReadAll(b));
        Assert.Contains($"nlmsg_len {nlmsgLen} but 32 bytes remain", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    public void An_nla_len_shorter_than_the_attribute_header_is_a_parse_error(int nlaLen)
    {
        byte[] attrs = [.. Attr(IFLA_MTU, 0xdc, 5, 0, 0), (byte)nlaLen, 0, (byte)IFLA_IFNAME, 0, (byte)'x', 0, 0, 0];
        NetlinkParseException e = Assert.Throws<NetlinkParseException>(() => AttributeReader.ReadAll(attrs, "test attributes"));
        Assert.Equal(8, e.Offset);
        Assert.Equal("test attributes", e.Context);
        Assert.Contains($"attribute type {IFLA_IFNAME} has nla_len {nlaLen} but 8 bytes remain", e.Message, StringComparison.Ordinal);

        byte[] link = Message(RTM_NEWLINK, [.. new byte[SizeofIfinfomsg], .. attrs]);
        e = Assert.Throws<NetlinkParseException>(() => Link.Decode(Assert.Single(MessageReader.ReadAll(link))));
        Assert.Contains("RTM_NEWLINK attributes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_nla_len_past_the_end_is_a_parse_error_also_when_nested()
    {
        byte[] attrs = Attr(IFLA_IFNAME, "v0\0"u8.ToArray());
        attrs[0] = 8;
        NetlinkParseException e = Assert.Throws<NetlinkParseException>(() => AttributeReader.ReadAll(attrs, "test"));
        Assert.Contains("has nla_len 8 but 7 bytes remain", e.Message, StringComparison.Ordinal);

        // IFLA_LINKINFO whose IFLA_INFO_KIND claims more than the nest holds.
        byte[] kind = Attr(IFLA_INFO_KIND, "ipip\0"u8.ToArray());
        kind[0] = 40;
        byte[] link = Message(RTM_NEWLINK, [.. new byte[SizeofIfinfomsg], .. Attr(IFLA_LINKINFO, kind)]);
        e = Assert.Throws<NetlinkParseException>(() => Link.Decode(Assert.Single(MessageReader.ReadAll(link))));
        Assert.Equal("IFLA_LINKINFO", e.Context);
        Assert.Contains("attribute type 1 has nla_len 40 but 9 bytes remain", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Trailing_bytes_too_short_for_an_attribute_header_are_a_parse_error(int trailing)
    {
        byte[] attrs = [.. Attr(IFLA_MTU, 0xdc, 5, 0, 0), .. new byte[trailing]];
        NetlinkParseException e = Assert.Throws<NetlinkParseException>(() => AttributeReader.ReadAll(attrs, "test"));
        Assert.Contains($"{trailing} trailing bytes are too short for an attribute header", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_last_attribute_and_the_last_message_may_omit_their_padding()
    {
        // ifinfomsg, IFLA_IFNAME "v0" (padded), IFLA_OPERSTATE u8 (5 bytes, unpadded): nlmsg_len 45.
        byte[] first = Message(RTM_NEWLINK, [.. new byte[SizeofIfinfomsg], .. Padded(Attr(IFLA_IFNAME, "v0\0"u8.ToArray())), .. Attr(IFLA_OPERSTATE, 6)]);
        Assert.Equal(45, first.Length);
        Link only = Link.Decode(Assert.Single(MessageReader.ReadAll(first)));
        Assert.Equal("v0", only.Name);
        Assert.Equal(6, only.OperState);

        // The same message padded (as between messages), then a second one.
        byte[] second = Message(RTM_NEWLINK, [.. new byte[SizeofIfinfomsg], .. Attr(IFLA_MTU, 0xdc, 5, 0, 0)]);
        List<NetlinkMessage> both = MessageReader.ReadAll(Concat(Padded(first), second));
        Assert.Equal(2, both.Count);
        Assert.Equal(45u, both[0].Header.Length);
        Assert.Equal(29, both[0].Payload.Length);
        Assert.Equal(6, Link.Decode(both[0]).OperState);
        Assert.Equal(1500, Link.Decode(both[1]).Mtu);
    }

    [Fact]
    public void Unknown_attributes_are_kept_in_Attributes_in_wire_order()
    {
        byte[] unknown = Padded(Attr(999, 1, 2, 3));
        byte[] unknownNested = Attr(998 | NLA_F_NESTED, Attr(1, 4, 0, 0, 0));

        Link link = Link.Decode(Single(RTM_NEWLINK, [.. new byte[SizeofIfinfomsg], .. unknown, .. Attr(IFLA_MTU, 0xdc, 5, 0, 0), .. unknownNested]));
        Assert.Equal(1500, link.Mtu);
        Assert.Equal([(ushort)999, IFLA_MTU, (ushort)998], link.Attributes.Select(a => a.Type));
        Assert.Equal(new byte[] { 1, 2, 3 }, link.Attributes[0].Payload.ToArray());
        Assert.True(link.Attributes[2].Nested);

        byte[] dst = Attr(1, 192, 0, 2, 1); // RTA_DST, IFA_ADDRESS, FRA_DST, NDA_DST are all type 1
        Assert.Equal(2, AddressEntry.Decode(Single(RTM_NEWADDR, [.. new byte[SizeofIfaddrmsg], .. dst, .. unknown])).Attributes.Count);
        Assert.Equal((ushort)999, RouteEntry.Decode(Single(RTM_NEWROUTE, [.. new byte[SizeofRtmsg], .. dst, .. unknown])).Attributes[1].Type);
        Assert.Equal((ushort)999, RuleEntry.Decode(Single(RTM_NEWRULE, [.. new byte[SizeofFibRuleHdr], .. unknown, .. dst])).Attributes[0].Type);
        Assert.Equal((ushort)999, NeighbourEntry.Decode(Single(RTM_NEWNEIGH, [.. new byte[SizeofNdmsg], .. dst, .. unknown])).Attributes[1].Type);
    }

    [Fact]
    public void A_link_whose_IFLA_MTU_has_a_1_byte_payload_is_a_parse_error_naming_the_attribute()
    {
        NetlinkMessage m = Single(RTM_NEWLINK, [.. new byte[SizeofIfinfomsg], .. Padded(Attr(IFLA_MTU, 0xdc))]);
        NetlinkParseException e = Assert.Throws<NetlinkParseException>(() => Link.Decode(m));
        Assert.Contains($"attribute type {IFLA_MTU}", e.Message, StringComparison.Ordinal);
        Assert.Contains("1-byte payload", e.Message, StringComparison.Ordinal);
        Assert.Contains("u32", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("u8", 0)]
    [InlineData("u16", 1)]
    [InlineData("be16", 1)]
    [InlineData("u32", 3)]
    [InlineData("s32", 3)]
    [InlineData("be32", 3)]
    [InlineData("u64", 7)]
    public void Every_typed_getter_rejects_a_short_payload(string getter, int length)
    {
        var a = new NetlinkAttribute(42, false, new byte[length]);
        Action get = getter switch
        {
            "u8" => () => a.U8(),
            "u16" => () => a.U16(),
            "be16" => () => a.U16BigEndian(),
            "u32" => () => a.U32(),
            "s32" => () => a.I32(),
            "be32" => () => a.U32BigEndian(),
            _ => () => a.U64(),
        };
        NetlinkParseException e = Assert.Throws<NetlinkParseException>(get);
        Assert.Contains("attribute type 42", e.Message, StringComparison.Ordinal);
        Assert.Contains($"{length}-byte payload", e.Message, StringComparison.Ordinal);
        Assert.Contains(getter, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(5)]
    [InlineData(15)]
    [InlineData(17)]
    public void An_address_attribute_of_the_wrong_size_is_a_parse_error(int length)
    {
        NetlinkParseException e = Assert.Throws<NetlinkParseException>(() => new NetlinkAttribute(RTA_DST, false, new byte[length]).Address());
        Assert.Contains($"{length}-byte payload", e.Message, StringComparison.Ordinal);
        Assert.Throws<NetlinkParseException>(() => RouteEntry.Decode(Single(RTM_NEWROUTE, [.. new byte[SizeofRtmsg], .. Attr(RTA_GATEWAY, new byte[length])])));
    }

    [Fact]
    public void A_payload_shorter_than_the_family_header_is_a_parse_error()
    {
        Assert.Contains("struct ifinfomsg", Assert.Throws<NetlinkParseException>(() => Link.Decode(Single(RTM_NEWLINK, new byte[SizeofIfinfomsg - 1]))).Message, StringComparison.Ordinal);
        Assert.Contains("struct ifaddrmsg", Assert.Throws<NetlinkParseException>(() => AddressEntry.Decode(Single(RTM_NEWADDR, new byte[SizeofIfaddrmsg - 1]))).Message, StringComparison.Ordinal);
        Assert.Contains("struct rtmsg", Assert.Throws<NetlinkParseException>(() => RouteEntry.Decode(Single(RTM_NEWROUTE, new byte[SizeofRtmsg - 1]))).Message, StringComparison.Ordinal);
        Assert.Contains("struct fib_rule_hdr", Assert.Throws<NetlinkParseException>(() => RuleEntry.Decode(Single(RTM_NEWRULE, new byte[SizeofFibRuleHdr - 1]))).Message, StringComparison.Ordinal);
        Assert.Contains("struct ndmsg", Assert.Throws<NetlinkParseException>(() => NeighbourEntry.Decode(Single(RTM_NEWNEIGH, new byte[SizeofNdmsg - 1]))).Message, StringComparison.Ordinal);
        Assert.Contains("struct nlmsgerr", Assert.Throws<NetlinkParseException>(() => NetlinkError.Decode(Single(NLMSG_ERROR, new byte[SizeofNlmsgerr - 1]))).Message, StringComparison.Ordinal);
        Assert.Throws<NetlinkParseException>(() => RouteMonitor.Decode(Single(RTM_DELROUTE, new byte[3])));
    }

    [Fact]
    public void An_address_without_IFA_LOCAL_or_IFA_ADDRESS_is_a_parse_error()
    {
        NetlinkParseException e = Assert.Throws<NetlinkParseException>(() => AddressEntry.Decode(Single(RTM_NEWADDR, new byte[SizeofIfaddrmsg])));
        Assert.Contains("neither IFA_LOCAL nor IFA_ADDRESS", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(15u)]
    [InlineData(37u)] // one more than the 36 bytes after the error code
    [InlineData(0x7fffffffu)]
    [InlineData(0x80000000u)]
    [InlineData(0xfffffffdu)]
    [InlineData(0xffffffffu)]
    public void An_error_whose_echoed_request_length_lies_is_a_parse_error(uint echoedLength)
    {
        // NLMSG_ERROR with NLM_F_ACK_TLVS, not capped: error, the whole request (here 16 + 12 bytes), then the TLVs.
        byte[] request = Message(RTM_NEWROUTE, new byte[SizeofRtmsg]);
        BinaryPrimitives.WriteUInt32LittleEndian(request, echoedLength);
        byte[] payload = [.. BitConverter.GetBytes(-Errno.EINVAL), .. request, .. Padded(Attr(NLMSGERR_ATTR_MSG, "bad\0"u8.ToArray()))];
        NetlinkMessage m = Assert.Single(MessageReader.ReadAll(Message(NLMSG_ERROR, payload, NLM_F_ACK_TLVS)));
        NetlinkParseException e = Assert.Throws<NetlinkParseException>(() => NetlinkError.Decode(m));
        Assert.Equal("NLMSG_ERROR", e.Context);
        Assert.Contains($"nlmsg_len {echoedLength}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_error_with_an_honest_echoed_request_gives_the_ext_ack()
    {
        byte[] request = Message(RTM_NEWROUTE, new byte[SizeofRtmsg]);
        byte[] payload = [.. BitConverter.GetBytes(-Errno.EINVAL), .. request, .. Padded(Attr(NLMSGERR_ATTR_MSG, "bad\0"u8.ToArray())), .. Attr(NLMSGERR_ATTR_OFFS, 28, 0, 0, 0)];
        NetlinkError e = NetlinkError.Decode(Assert.Single(MessageReader.ReadAll(Message(NLMSG_ERROR, payload, NLM_F_ACK_TLVS))));
        Assert.Equal(new NetlinkError(Errno.EINVAL, new NetlinkMessageHeader(28, RTM_NEWROUTE, 0, 1, 0), "bad", 28), e);
    }

    [Fact]
    public void A_short_NLMSG_DONE_is_a_successful_end_of_dump()
    {
        Assert.Equal(0, NetlinkError.DecodeDone(Single(NLMSG_DONE, [])).Errno);
        Assert.Equal(0, NetlinkError.DecodeDone(Single(NLMSG_DONE, [1, 2])).Errno);
    }

    [Fact]
    public void RouteMonitor_ignores_message_types_it_does_not_report()
    {
        Assert.Null(RouteMonitor.Decode(Single(NLMSG_NOOP, [1, 2, 3])));
        Assert.Null(RouteMonitor.Decode(Single(RTM_GETLINK, [])));
    }

    /// <summary>An attribute: header and payload, unpadded.</summary>
    private static byte[] Attr(int type, params byte[] payload)
    {
        byte[] a = new byte[Align.NLA_HDRLEN + payload.Length];
        BinaryPrimitives.WriteUInt16LittleEndian(a, (ushort)a.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(a.AsSpan(2), (ushort)type);
        payload.CopyTo(a, Align.NLA_HDRLEN);
        return a;
    }

    private static byte[] Concat(params byte[][] parts) => [.. parts.SelectMany(p => p)];

    private static byte[] Padded(byte[] b) => [.. b, .. new byte[Align.NlaAlign(b.Length) - b.Length]];

    /// <summary>A message: header (nlmsg_len = exact, unpadded length; sequence 1) and payload.</summary>
    private static byte[] Message(ushort type, byte[] payload, ushort flags = 0)
    {
        byte[] m = new byte[NetlinkMessageHeader.Size + payload.Length];
        new NetlinkMessageHeader((uint)m.Length, type, flags, 1, 0).WriteLittleEndian(m);
        payload.CopyTo(m, NetlinkMessageHeader.Size);
        return m;
    }

    private static NetlinkMessage Single(ushort type, byte[] payload) => Assert.Single(MessageReader.ReadAll(Message(type, payload)));
}

/// <summary>
/// Replies of Linux 6.18 (iproute2 6.1 set-up), captured from a NETLINK_ROUTE socket with
/// NETLINK_EXT_ACK and NETLINK_GET_STRICT_CHK on, in a fresh namespace prepared with:
/// <code>
/// ip link add v0 type veth peer name v1; ip link set v0 up; ip link set v1 up; ip link set v0 alias "ma:test link"
/// ip addr add 192.0.2.1/24 brd + dev v0 label v0:lab; ip addr add 10.0.0.1 peer 10.0.0.2/32 dev v1
/// ip addr add 2001:db8::1/64 dev v0 nodad
/// ip route add 203.0.113.0/24 via 192.0.2.254 dev v0 table 100 proto 77 metric 10 mtu 1400 src 192.0.2.1
/// ip route add blackhole 198.51.100.0/24 table 100
/// ip route add 198.18.0.0/16 encap ip dst 192.0.2.9 ttl 7 dev v0 table 100
/// ip rule add from 192.0.2.10/32 lookup 100 priority 1000 proto 77
/// ip rule add not fwmark 0x10/0xff iif v0 oif v1 lookup 100 priority 1001 suppress_prefixlength 0
/// ip neigh add 192.0.2.20 lladdr 02:00:00:00:00:14 dev v0 nud permanent; ip neigh add proxy 192.0.2.30 dev v0
/// </code>
/// then one dump request per object type (and three failing requests and an ack), each datagram
/// exactly as recv() returned it. Sequence numbers are 101.
/// </summary>
internal static class KernelCaptures
{
    private sealed record Capture(string Name, string Hex);

    private static readonly Capture[] Captures =
    [
        new("RTM_GETLINK dump: RTM_NEWLINK x3", """
            4c04000010000200650000003466000000000403010000004900010000000000070003006c6f000008000d00e803000005001000000000000500110000000000
            050043000100000008000400000001000800320000000000080033000000000008001b000000000008001e000000000008003d000000000008001f0001000000
            08002800ffff0000080029000000010008003a000000010008003f0000000100080040000000010008003b00f8ff070008003c00ffff00000800420000000000
            08002000010000000500210001000000080023000000000008002f00000000000800300000000000060044000000000006004500000000000500270000000000
            0a00010000000000000000000a0002000000000000000000cc001700000000000000000000000000000000000000000000000000000000000000000000000000
            00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
            00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
            00000000000000000000000000000000000000000000000000000000000000000000000064000700000000000000000000000000000000000000000000000000
            00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
            00000000000000000c002b0005000200000000000c0006006e6f717565756500c0011a008c000200880001000000000000000000000000000100000001000000
            01000000010000000000000001000000000000000000000000000000000000000000000001000000010000000000000000000000000000000000000000000000
            000000000000000000000000000000000000000010270000e8030000000000000000000000000000000000000100000030010a00080001000000008014000500
            ffff0000645101005c840000e8030000f400020000000000400000000000010001000000010000000100000001000000ffffffffa00f0000e8030000ffffffff
            803a0900805101000300000058020000100000000000000001000000010000000100000060ea0000000000000000000000000000000000000000000000000000
            ffffffff000000000000000010270000e80300000100000000000000000000000100000000000000000000000100000000000000000000000000000000000000
            80ee360000000000000000000100000000000000000000000000000000000000000000000004000000000000ffff0000ffffffff010000000000000000000000
            000000001400070000000000000000000000000000000000050008000000000024000e0000000000000000000000000000000000000000000000000000000000
            0000000004003e80040041806404000010000200650000003466000000000100020000004310010000000000070003007631000008000d00e803000005001000
            060000000500110000000000050043000000000008000400dc050000080032004400000008003300ffff000008001b000000000008001e000000000008003d00
            0000000008001f000200000008002800ffff0000080029000000010008003a000000010008003f0000000100080040000000010008003b00f8ff070008003c00
            ffff0000080042000000000008002000020000000500210001000000080023000200000008002f00010000000800300001000000060044000000000006004500
            0000000005002700000000000a000100c212e15d329200000a000200ffffffffffff0000cc00170002000000000000000100000000000000c800000000000000
            5a000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
            00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
            000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000640007000200000001000000c8000000
            5a000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
            00000000000000000000000000000000000000000c002b0005000200000000001000120009000100766574680000000008000500030000000c0006006e6f7175
            65756500c0011a008c00020088000100000000000000000000000000010000000100000001000000010000000000000001000000000000000000000000000000
            000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000010270000e8030000
            000000000000000000000000000000000100000030010a00080001000000008014000500ffff000065510100ac700000e8030000f40002000000000040000000
            dc05000001000000010000000100000001000000ffffffffa00f0000e803000000000000803a0900805101000300000058020000100000000000000001000000
            010000000100000060ea000000000000000000000000000000000000000000000000000001000000000000000000000010270000e80300000100000000000000
            00000000010000000000000000000000010000000000000000000000000000000000000080ee3600000000000000000001000000000000000000000000000000
            00000000000000000004000000000000ffff0000ffffffff01000000000000000000000000000000140007000000000000000000000000000000000005000800
            0000000024000e00000000000000000000000000000000000000000000000000000000000000000004003e800400418078040000100002006500000034660000
            00000100030000004310010000000000070003007630000008000d00e803000005001000060000000500110000000000050043000000000008000400dc050000
            080032004400000008003300ffff000008001b000000000008001e000000000008003d000000000008001f000200000008002800ffff00000800290000000100
            08003a000000010008003f0000000100080040000000010008003b00f8ff070008003c00ffff0000080042000000000008002000020000000500210001000000
            110014006d613a74657374206c696e6b00000000080023000200000008002f000100000008003000010000000600440000000000060045000000000005002700
            000000000a000100b21be44160fe00000a000200ffffffffffff0000cc001700010000000000000002000000000000005a00000000000000c800000000000000
            00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
            00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
            000000000000000000000000000000000000000000000000000000000000000000000000000000006400070001000000020000005a000000c800000000000000
            00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
            0000000000000000000000000c002b0005000200000000001000120009000100766574680000000008000500020000000c0006006e6f717565756500c0011a00
            8c000200880001000000000000000000000000000100000001000000010000000100000000000000010000000000000000000000000000000000000000000000
            00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000010270000e80300000000000000000000
            00000000000000000100000030010a00080001000000008014000500ffff000065510100fc940000e8030000f40002000000000040000000dc05000001000000
            010000000100000001000000ffffffffa00f0000e803000000000000803a09008051010003000000580200001000000000000000010000000100000001000000
            60ea000000000000000000000000000000000000000000000000000001000000000000000000000010270000e803000001000000000000000000000001000000
            0000000000000000010000000000000000000000000000000000000080ee36000000000000000000010000000000000000000000000000000000000000000000
            0004000000000000ffff0000ffffffff010000000000000000000000000000001400070000000000000000000000000000000000050008000000000024000e00
            000000000000000000000000000000000000000000000000000000000000000004003e8004004180
            """),
        new("RTM_GETLINK dump: NLMSG_DONE", """
            1400000003000200650000003466000000000000
            """),
        new("RTM_GETADDR dump (AF_UNSPEC): RTM_NEWADDR x7", """
            4c000000140002006500000077660000020880fe01000000080001007f000001080002007f000001070003006c6f0000080008008000000014000600ffffffff
            ffffffff64510100645101004c0000001400020065000000776600000220800002000000080001000a000002080002000a000001070003007631000008000800
            8000000014000600ffffffffffffffff665101006651010058000000140002006500000077660000021880000300000008000100c000020108000200c0000201
            08000400c00002ff0b00030076303a6c61620000080008008000000014000600ffffffffffffffff665101006651010050000000140002006500000077660000
            0a8080fe01000000140001000000000000000000000000000000000114000600ffffffffffffffff6451010064510100080008008000000005000b0001000000
            500000001400020065000000776600000a40c0fd0200000014000100fe80000000000000c012e1fffe5d329214000600ffffffffffffffff6551010065510100
            08000800c000000005000b0003000000480000001400020065000000776600000a408200030000001400010020010db800000000000000000000000114000600
            ffffffffffffffff67510100675101000800080082000000500000001400020065000000776600000a40c0fd0300000014000100fe80000000000000b01be4ff
            fe4160fe14000600ffffffffffffffff655101006551010008000800c000000005000b0003000000
            """),
        new("RTM_GETADDR dump (AF_UNSPEC): NLMSG_DONE", """
            1400000003000200650000007766000000000000
            """),
        new("RTM_GETROUTE dump (AF_INET, all tables): RTM_NEWROUTE x11", """
            740000001800220065000000d2660000021000006403fd010000000008000f006400000008000100c61200000800040003000000380016000c00010000000000
            0000000008000200c0000209080003000000000005000500000000000500040007000000060006000000000006001500020000002c0000001800220065000000
            d266000002180000640300060000000008000f006400000008000100c6336400580000001800220065000000d266000002180000644d00010000000008000f00
            6400000008000100cb007100080006000a0000000c000800080002007805000008000700c000020108000500c00002fe08000400030000003c00000018002200
            65000000d266000002200000fe02fd010000000008000f00fe000000080001000a000002080007000a00000108000400020000003c0000001800220065000000
            d266000002180000fe02fd010000000008000f00fe00000008000100c000020008000700c000020108000400030000003c0000001800220065000000d2660000
            02200000ff02fe020000000008000f00ff000000080001000a000001080007000a00000108000400020000003c0000001800220065000000d266000002080000
            ff02fe020000000008000f00ff000000080001007f000000080007007f00000108000400010000003c0000001800220065000000d266000002200000ff02fe02
            0000000008000f00ff000000080001007f000001080007007f00000108000400010000003c0000001800220065000000d266000002200000ff02fd0300000000
            08000f00ff000000080001007fffffff080007007f00000108000400010000003c0000001800220065000000d266000002200000ff02fe020000000008000f00
            ff00000008000100c000020108000700c000020108000400030000003c0000001800220065000000d266000002200000ff02fd030000000008000f00ff000000
            08000100c00002ff08000700c00002010800040003000000
            """),
        new("RTM_GETROUTE dump (AF_INET, all tables): NLMSG_DONE", """
            140000000300020065000000d266000000000000
            """),
        new("RTM_GETROUTE dump (AF_INET6, all tables): RTM_NEWROUTE x7", """
            740000001800220065000000fc6600000a400000fe0200010000000008000f00fe0000001400010020010db80000000000000000000000000800060000010000
            080004000300000024000c0000000000000000000000000000000000000000000000000000000000000000000500140000000000740000001800220065000000
            fc6600000a400000fe0200010000000008000f00fe00000014000100fe8000000000000000000000000000000800060000010000080004000200000024000c00
            00000000000000000000000000000000000000000000000000000000000000000500140000000000740000001800220065000000fc6600000a400000fe020001
            0000000008000f00fe00000014000100fe8000000000000000000000000000000800060000010000080004000300000024000c00000000000000000000000000
            00000000000000000000000000000000000000000500140000000000740000001800220065000000fc6600000a800000ff0200020000000008000f00ff000000
            14000100000000000000000000000000000000010800060000000000080004000100000024000c00000000000000000000000000000000000000000000000000
            00000000000000000500140000000000740000001800220065000000fc6600000a800000ff0200020000000008000f00ff0000001400010020010db800000000
            00000000000000010800060000000000080004000300000024000c00000000000000000000000000000000000000000000000000000000000000000005001400
            00000000740000001800220065000000fc6600000a080000ff0200050000000008000f00ff00000014000100ff00000000000000000000000000000008000600
            00010000080004000200000024000c00000000000000000000000000000000000000000000000000000000000000000005001400000000007400000018002200
            65000000fc6600000a080000ff0200050000000008000f00ff00000014000100ff00000000000000000000000000000008000600000100000800040003000000
            24000c0000000000000000000000000000000000000000000000000000000000000000000500140000000000
            """),
        new("RTM_GETROUTE dump (AF_INET6, all tables): NLMSG_DONE", """
            140000000300020065000000fc66000000000000
            """),
        new("RTM_GETRULE dump (AF_INET): RTM_NEWRULE x5, NLMSG_DONE", """
            3400000020000200650000002e67000002000000ff0000010000000008000f00ff00000008000e00ffffffff0500150002000000440000002000020065000000
            2e67000002002000640000010000000008000f006400000008000e00ffffffff050015004d00000008000600e803000008000200c000020a5c00000020000200
            650000002e67000002000000640000010200000008000f006400000008000e000000000005001500000000000700030076300000070011007631000008000600
            e903000008000a001000000008001000ff0000003c00000020000200650000002e67000002000000fe0000010000000008000f00fe00000008000e00ffffffff
            050015000200000008000600fe7f00003c00000020000200650000002e67000002000000fd0000010000000008000f00fd00000008000e00ffffffff05001500
            0200000008000600ff7f00001400000003000200650000002e67000000000000
            """),
        new("RTM_GETNEIGH dump: RTM_NEWNEIGH, NLMSG_DONE", """
            4c0000001c000200650000005867000002000000030000008000000108000100c00002140a000200020000000014000008000400000000001400030050000000
            5000000050000000000000001400000003000200650000005867000000000000
            """),
        new("RTM_GETNEIGH dump (NTF_PROXY): RTM_NEWNEIGH, NLMSG_DONE", """
            240000001c000200650000008267000002000000030000000000080108000100c000021e1400000003000200650000008267000000000000
            """),
        new("RTM_NEWROUTE oif 999: ENODEV: NLMSG_ERROR", """
            400000000200000065000000ac670000edffffff2c00000018000506650000000000000002180000fe0300010000000008000100cb00710008000400e7030000
            """),
        new("RTM_NEWADDR with a 3-byte IFA_LOCAL: ERANGE with ext-ack: NLMSG_ERROR", """
            880000000200000265000000d6670000deffffff2000000014000506650000000000000002180000010000000700020001020300270001004174747269627574
            65206661696c656420706f6c6963792076616c69646174696f6e00000800020018000000240004800c00040000000000000000000c000500ffffffff00000000
            0800010004000000
            """),
        new("the same with NETLINK_CAP_ACK (capped): NLMSG_ERROR", """
            78000000020000036500000000680000deffffff2000000014000506650000000000000027000100417474726962757465206661696c656420706f6c69637920
            76616c69646174696f6e00000800020018000000240004800c00040000000000000000000c000500ffffffff000000000800010004000000
            """),
        new("RTM_NEWLINK set lo up: ack: NLMSG_ERROR", """
            2400000002000001650000002a6800000000000020000000100005006500000000000000
            """),
    ];

    /// <summary>Each capture as (description, datagram bytes).</summary>
    public static readonly List<(string Name, byte[] Bytes)> All =
        Captures.Select(c => (c.Name, Convert.FromHexString(string.Concat(c.Hex.Where(char.IsAsciiHexDigit))))).ToList();
}
