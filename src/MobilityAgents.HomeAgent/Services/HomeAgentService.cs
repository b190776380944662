using System.Net;
using System.Threading.Channels;
using Grpc.Core;
using MobilityAgents.Core;
using MobilityAgents.HomeAgent.Configuration;
using MobilityAgents.HomeAgent.Security;
using MobilityAgents.Protocol.V1;
using V1 = MobilityAgents.Protocol.V1;

namespace MobilityAgents.HomeAgent.Services;

/// <summary>
/// The gRPC face of the home agent: a thin adapter that takes the caller's identity from its
/// client certificate, parses the request, calls the <see cref="BindingTable"/>, and maps the
/// result (or the refusal, through <see cref="Refusals"/>) back to the protocol. It keeps no
/// binding state of its own.
/// </summary>
internal sealed class HomeAgentService(
    BindingTable table,
    AuthorizationPolicy policy,
    HomeAgentOptions options,
    Datapath.KeepaliveKeys keys,
    BindingMonitor monitor,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<HomeAgentService> logger) : V1.HomeAgent.HomeAgentBase
{
    private const int MaxDeviceIdLength = 128;

    public override Task<RegisterReply> Register(RegisterRequest request, ServerCallContext context)
    {
        string identity = Caller(context);
        IPAddress careOf = Address(identity, "Register", request.CareOfAddress, "care_of_address", "care-of address")
            ?? throw Refuse("Register", identity, Refusals.InvalidArgument("care_of_address", "care_of_address is required: the laptop's current address on the visited network"));
        IPAddress? home = Address(identity, "Register", request.HomeAddress, "home_address", "home address");
        CheckDeviceId(identity, request.DeviceId);
        CheckTraffic(identity, request.Traffic);
        TimeSpan? lifetimeRequested = request.RequestedLifetimeSeconds == 0 ? null : TimeSpan.FromSeconds(request.RequestedLifetimeSeconds);

        // NAT detection: the control connection's source is the address the laptop's packets
        // reach us from. If it is not the care-of address the laptop reports, something rewrote
        // it on the way: plain ipip (IP protocol 4, no ports) would not pass, ipip-in-UDP does.
        IPAddress? observed = context.GetHttpContext().Connection.RemoteIpAddress is { } seen
            ? (seen.IsIPv4MappedToIPv6 ? seen.MapToIPv4() : seen) : null;
        bool behindNat = observed is not null && !observed.Equals(careOf);
        Core.Encapsulation encapsulation = request.Encapsulation switch
        {
            V1.Encapsulation.Ipip => Core.Encapsulation.Ipip,
            V1.Encapsulation.IpipUdp => Core.Encapsulation.IpipUdp,
            V1.Encapsulation.Unspecified => behindNat ? Core.Encapsulation.IpipUdp : Core.Encapsulation.Ipip,
            _ => throw Refuse("Register", identity, Refusals.InvalidArgument("encapsulation", $"encapsulation {request.Encapsulation} is not known: use UNSPECIFIED, IPIP or IPIP_UDP")),
        };

        Core.Binding b = Refusing("Register", identity, () =>
            table.Register(identity, request.DeviceId, careOf, home, lifetimeRequested, encapsulation));
        bool udp = b.Encapsulation == Core.Encapsulation.IpipUdp;
        if (behindNat)
        {
            Log.NatDetected(logger, identity, careOf.ToString(), observed!.ToString(), udp ? "ipip-in-UDP" : "ipip (the laptop insisted)");
        }

        return Task.FromResult(new RegisterReply
        {
            BindingId = b.Id,
            GrantedLifetimeSeconds = (uint)b.Lifetime.TotalSeconds,
            HomeAddress = b.HomeAddress.ToString(),
            HomePrefix = options.HomePrefix.ToString(),
            HomeAgentAddress = options.OuterAddress.ToString(),
            CareOfAddress = b.CareOfAddress.ToString(),
            InnerHomeAgentAddress = "", // unnumbered tunnel
            InnerMobileAddress = "",
            TunnelMtu = (uint)(options.TunnelMtu - (udp ? Datapath.KernelDatapath.UdpOverhead : 0)),
            HeartbeatIntervalSeconds = (uint)Math.Max(1, (int)ProtocolTimers.HeartbeatInterval(b.Lifetime).TotalSeconds),
            Encapsulation = ToProto(b.Encapsulation),
            UdpPort = udp ? options.UdpPort : 0u,
            KeepaliveToken = udp ? keys.TokenOf(b.Id) : 0ul,
            KeepaliveKey = udp ? Google.Protobuf.ByteString.CopyFrom(keys.KeyOf(b.Id)) : Google.Protobuf.ByteString.Empty,
            KeepaliveIntervalSeconds = udp ? (uint)options.KeepaliveInterval.TotalSeconds : 0u,
            ObservedAddress = observed?.ToString() ?? "",
        });
    }

    public override async Task Heartbeat(IAsyncStreamReader<HeartbeatRequest> requestStream, IServerStreamWriter<HeartbeatReply> responseStream, ServerCallContext context)
    {
        string identity = Caller(context);
        var session = new HeartbeatSession(identity);
        Log.HeartbeatStreamOpened(logger, identity, context.Peer);
        using var reading = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        monitor.Add(session);
        Task reader = ReadHeartbeatsAsync(requestStream, session, reading.Token);
        try
        {
            await foreach (HeartbeatReply reply in session.Outbox.ReadAllAsync(context.CancellationToken))
            {
                await responseStream.WriteAsync(reply, context.CancellationToken);
            }

            if (session.Final is { } last)
            {
                await responseStream.WriteAsync(last, context.CancellationToken);
                Log.NoticeSent(logger, last.Notice.ToString(), identity, last.BindingId, last.Reason);

                // Give the laptop the chance to read it: an HTTP/2 client drops what it has not read
                // of a stream it is still sending on when the connection closes under it. The laptop
                // acknowledges by closing its side; wait for that, briefly, then end anyway.
                await reader.WaitAsync(HomeAgentTimers.FinalNoticeGrace, time, context.CancellationToken)
                    .ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
        finally
        {
            monitor.Remove(session);
            await reading.CancelAsync();
            await reader.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            Log.HeartbeatStreamClosed(logger, identity);
        }
    }

    public override Task<DeregisterReply> Deregister(DeregisterRequest request, ServerCallContext context)
    {
        string identity = Caller(context);
        if (string.IsNullOrEmpty(request.BindingId))
        {
            throw Refuse("Deregister", identity, Refusals.InvalidArgument("binding_id", "binding_id is required: the id Register returned"));
        }

        Refusing("Deregister", identity, () => table.Deregister(identity, request.BindingId));
        return Task.FromResult(new DeregisterReply());
    }

    public override Task<V1.Binding> GetBinding(GetBindingRequest request, ServerCallContext context)
    {
        string caller = Caller(context);
        bool byHome = request.HomeAddress.Length > 0, byIdentity = request.Identity.Length > 0;
        if (byHome == byIdentity)
        {
            throw Refuse("GetBinding", caller, Refusals.InvalidArgument(byHome ? "identity" : "home_address", "give exactly one of home_address and identity"));
        }

        Core.Binding? live;
        string? owner;
        IPAddress? home;
        string what;
        if (byHome)
        {
            home = Address(caller, "GetBinding", request.HomeAddress, "home_address", "home address")!;
            live = table.GetByHomeAddress(home);
            owner = live?.Identity ?? policy.OwnerOf(home);
            what = $"home address {home}";
        }
        else
        {
            owner = request.Identity;
            live = table.GetByIdentity(owner).OrderBy(b => b.RegisteredAt).FirstOrDefault();
            home = live?.HomeAddress ?? policy.AddressesOf(owner).FirstOrDefault();
            what = $"identity {owner}";
        }

        if (owner != caller && !options.Operators.Contains(caller))
        {
            throw Refuse("GetBinding", caller, Refusals.NotOperator($"identity {caller} may read only its own binding: reading {what} needs an identity listed in Operators"));
        }

        if (owner is null || home is null)
        {
            throw Refuse("GetBinding", caller, Refusals.NotFound(byHome
                ? $"no identity is authorized for home address {home}"
                : $"identity {owner} is not authorized for any home address"));
        }

        return Task.FromResult(live is not null
            ? ToProto(live, time.GetUtcNow())
            : new V1.Binding { Identity = owner, HomeAddress = home.ToString(), Reachable = false });
    }

    public override Task<ListBindingsReply> ListBindings(ListBindingsRequest request, ServerCallContext context)
    {
        string caller = Caller(context);
        RequireOperator(caller, "ListBindings");
        DateTimeOffset now = time.GetUtcNow();
        var reply = new ListBindingsReply();
        reply.Bindings.AddRange(table.List().OrderBy(b => b.HomeAddress.GetAddressBytes(), ByteOrder.Instance).Select(b => ToProto(b, now)));
        return Task.FromResult(reply);
    }

    public override async Task WatchBindings(WatchBindingsRequest request, IServerStreamWriter<V1.BindingEvent> responseStream, ServerCallContext context)
    {
        string caller = Caller(context);
        RequireOperator(caller, "WatchBindings");
        IReadOnlyList<Core.Binding> existing = [];
        ChannelReader<Core.BindingEvent> events = request.IncludeExisting ? table.Subscribe(out existing) : table.Subscribe();
        using var done = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, lifetime.ApplicationStopping);
        try
        {
            // Response headers now: the caller knows that every change from here on will be streamed.
            await context.WriteResponseHeadersAsync([]);
            foreach (Core.Binding b in existing)
            {
                await responseStream.WriteAsync(new V1.BindingEvent { Kind = V1.BindingEvent.Types.Kind.Existing, Binding = ToProto(b, time.GetUtcNow()) }, done.Token);
            }

            await foreach (Core.BindingEvent e in events.ReadAllAsync(done.Token))
            {
                V1.Binding binding = ToProto(e.Binding, time.GetUtcNow());
                binding.Reachable &= e.Change is not (BindingChange.Deregistered or BindingChange.Expired); // gone, whatever its ExpiresAt said
                await responseStream.WriteAsync(new V1.BindingEvent { Kind = ToProto(e.Change), Binding = binding }, done.Token);
            }
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            throw Refusals.ShuttingDown();
        }
        finally
        {
            table.Unsubscribe(events);
        }
    }

    private async Task ReadHeartbeatsAsync(IAsyncStreamReader<HeartbeatRequest> requests, HeartbeatSession session, CancellationToken cancellationToken)
    {
        try
        {
            while (await requests.MoveNext(cancellationToken))
            {
                HeartbeatReply reply = Beat(session, requests.Current.BindingId);
                try
                {
                    await session.ReplyAsync(reply, cancellationToken);
                }
                catch (ChannelClosedException)
                {
                    // The stream is ending (a final notice went out): keep reading until the laptop closes its side.
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or InvalidOperationException)
        {
            // The stream ended under us (shutdown, client reset): nothing more to read.
        }
        finally
        {
            session.Close(); // the client half-closed (or went away): end the stream once the replies are out
        }
    }

    /// <summary>One heartbeat: refresh the named binding, or say why not.</summary>
    private HeartbeatReply Beat(HeartbeatSession session, string bindingId)
    {
        if (string.IsNullOrEmpty(bindingId))
        {
            return Notice(HeartbeatReply.Types.Notice.Reregister, "", "the heartbeat names no binding: register first, then send the binding_id Register returned");
        }

        try
        {
            Core.Binding b = table.Refresh(session.Identity, bindingId);
            session.BindingId = b.Id;
            TimeSpan remaining = b.ExpiresAt - time.GetUtcNow();
            return new HeartbeatReply
            {
                Notice = HeartbeatReply.Types.Notice.Refreshed,
                BindingId = b.Id,
                RemainingLifetimeSeconds = (uint)Math.Max(0, (int)remaining.TotalSeconds),
            };
        }
        catch (BindingRefusedException e) when (e.Reason == RefusalReason.UnknownBinding)
        {
            if (session.BindingId == bindingId)
            {
                session.BindingId = null;
            }

            HeartbeatReply notice = monitor.WasReplaced(session.Identity, bindingId, out string reason)
                ? Notice(HeartbeatReply.Types.Notice.BindingReplaced, bindingId, reason)
                : Notice(HeartbeatReply.Types.Notice.Reregister, bindingId, $"the home agent has no binding {bindingId} for {session.Identity} (expired, deregistered or lost in a restart): register again now");
            Log.NoticeSent(logger, notice.Notice.ToString(), session.Identity, bindingId, notice.Reason);
            return notice;
        }
    }

    private static HeartbeatReply Notice(HeartbeatReply.Types.Notice notice, string bindingId, string reason) =>
        new() { Notice = notice, BindingId = bindingId, Reason = reason };

    private string Caller(ServerCallContext context) => ClientIdentity.Require(context, logger);

    private void RequireOperator(string caller, string operation)
    {
        if (!options.Operators.Contains(caller))
        {
            throw Refuse(operation, caller, Refusals.NotOperator($"identity {caller} may not call {operation}: it is for identities listed in Operators (any identity may GetBinding its own binding)"));
        }
    }

    /// <summary>A strict dotted quad from <paramref name="field"/>; null if empty; InvalidArgument naming the field otherwise.</summary>
    private IPAddress? Address(string identity, string operation, string value, string field, string what)
    {
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }

        return Ipv4.TryParse(value, out IPAddress a)
            ? a
            : throw Refuse(operation, identity, Refusals.InvalidArgument(field, $"{what} '{Printable(value)}' is not an IPv4 address (a.b.c.d)"));
    }

    private void CheckDeviceId(string identity, string deviceId)
    {
        if (deviceId.Length > MaxDeviceIdLength || deviceId.Any(char.IsControl))
        {
            throw Refuse("Register", identity, Refusals.InvalidArgument("device_id", $"device_id must be at most {MaxDeviceIdLength} printable characters"));
        }
    }

    private void CheckTraffic(string identity, TrafficSelection? traffic)
    {
        // The mobile agent applies the selection on the laptop; the home agent only checks it is sane.
        if (traffic is null)
        {
            return;
        }

        for (int i = 0; i < traffic.TcpPorts.Count; i++)
        {
            if (traffic.TcpPorts[i] is 0 or > 65535)
            {
                throw Refuse("Register", identity, Refusals.InvalidArgument($"traffic.tcp_ports[{i}]", $"TCP port {traffic.TcpPorts[i]} is not in 1..65535"));
            }
        }
    }

    private T Refusing<T>(string operation, string identity, Func<T> action)
    {
        try
        {
            return action();
        }
        catch (BindingRefusedException e)
        {
            throw Refuse(operation, identity, Refusals.From(e));
        }
    }

    private RpcException Refuse(string operation, string identity, RpcException e)
    {
        Log.Refused(logger, operation, identity, e.StatusCode.ToString(), e.Status.Detail);
        return e;
    }

    private static string Printable(string s) =>
        s.Length > 64 ? string.Concat(s.AsSpan(0, 64), "...") : new string([.. s.Select(c => char.IsControl(c) ? '?' : c)]);

    private static V1.Binding ToProto(Core.Binding b, DateTimeOffset now) => new()
    {
        BindingId = b.Id,
        Identity = b.Identity,
        DeviceId = b.DeviceId,
        HomeAddress = b.HomeAddress.ToString(),
        CareOfAddress = b.CareOfAddress.ToString(),
        Encapsulation = ToProto(b.Encapsulation),
        RegisteredAt = b.RegisteredAt.ToUnixTimeSeconds(),
        ExpiresAt = b.ExpiresAt.ToUnixTimeSeconds(),
        Reachable = b.ExpiresAt > now,
    };

    private static V1.Encapsulation ToProto(Core.Encapsulation e) => e switch
    {
        Core.Encapsulation.Ipip => V1.Encapsulation.Ipip,
        Core.Encapsulation.IpipUdp => V1.Encapsulation.IpipUdp,
        _ => V1.Encapsulation.Unspecified,
    };

    private static V1.BindingEvent.Types.Kind ToProto(BindingChange c) => c switch
    {
        BindingChange.Created => V1.BindingEvent.Types.Kind.Created,
        BindingChange.Moved => V1.BindingEvent.Types.Kind.Moved,
        BindingChange.Refreshed => V1.BindingEvent.Types.Kind.Refreshed,
        BindingChange.Replaced => V1.BindingEvent.Types.Kind.Replaced,
        BindingChange.Expired => V1.BindingEvent.Types.Kind.Expired,
        BindingChange.Deregistered => V1.BindingEvent.Types.Kind.Deregistered,
        _ => V1.BindingEvent.Types.Kind.Unspecified,
    };

    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static readonly ByteOrder Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}
