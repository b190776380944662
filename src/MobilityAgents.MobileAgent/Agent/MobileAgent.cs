using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using Grpc.Core;
using MobilityAgents.Core;
using MobilityAgents.MobileAgent.Configuration;
using MobilityAgents.Netlink;
using MobilityAgents.Protocol.V1;
using MobilityAgents.Reconciler;
using Polly;
using Polly.Retry;

namespace MobilityAgents.MobileAgent.Agent;

/// <summary>
/// The mobile agent: finds its care-of address (<see cref="CareOfMonitor"/>), registers it with the
/// home agent over a channel bound to that address, has the kernel writer program the mirror
/// tunnel from the reply, keeps the binding alive on the heartbeat stream, follows moves, and
/// cleans up on stop. One loop owns every decision and every kernel write; see
/// <see cref="AgentState"/> for the states and transitions. Time comes from the
/// <see cref="TimeProvider"/>. Ends with <see cref="ExitCode"/> and stops the host.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class MobileAgent : BackgroundService
{
    private readonly MobileAgentOptions _options;
    private readonly ClientTls _tls;
    private readonly IKernelWriter _kernel;
    private readonly NetworkNamespace _netns;
    private readonly TimeProvider _time;
    private readonly AgentTimers _timers;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ILogger<MobileAgent> _logger;
    private readonly ResiliencePipeline _retry;

    private CareOfMonitor? _movement;
    private HomeAgentConnection? _connection;
    private bool _connectionSuspect;
    private LiveBinding? _binding;
    private DateTimeOffset? _adoptUntil;
    private IPNetwork? _homePrefix;
    private IPAddress? _registeringFrom;
    private Task<RegisterReply>? _inFlight;
    private volatile AgentState _state = AgentState.Starting;
    private volatile int _exitCode;

    public MobileAgent(
        MobileAgentOptions options,
        ClientTls tls,
        IKernelWriter kernel,
        NetworkNamespace netns,
        TimeProvider time,
        AgentTimers timers,
        IHostApplicationLifetime lifetime,
        ILogger<MobileAgent> logger)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _tls = tls ?? throw new ArgumentNullException(nameof(tls));
        _kernel = kernel ?? throw new ArgumentNullException(nameof(kernel));
        _netns = netns ?? throw new ArgumentNullException(nameof(netns));
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _timers = timers ?? throw new ArgumentNullException(nameof(timers));
        _lifetime = lifetime ?? throw new ArgumentNullException(nameof(lifetime));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _retry = new ResiliencePipelineBuilder { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions
            {
                // Unreachable home agent: 1 s, 2 s, 4 s ... 30 s, each with jitter (a gateway that
                // comes back is not hit by every laptop at the same instant), for as long as it takes.
                ShouldHandle = args => ValueTask.FromResult(
                    args.Outcome.Exception is { } e && !args.Context.CancellationToken.IsCancellationRequested &&
                    Refusal.Classify(e) == FailureKind.Transient),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = timers.ReconnectBaseDelay,
                MaxDelay = timers.ReconnectMaxDelay,
                MaxRetryAttempts = int.MaxValue,
                OnRetry = args =>
                {
                    _connectionSuspect = true;
                    _binding?.Failed(args.Outcome.Exception is { } f ? Refusal.Describe(f) : "no reply to Register");
                    Log.RegisterRetry(_logger, _registeringFrom?.ToString() ?? "?", args.AttemptNumber + 1,
                        args.Outcome.Exception is { } e ? Refusal.Describe(e) : "no reply", args.RetryDelay.TotalSeconds);
                    if (args.Outcome.Exception is RpcException { StatusCode: StatusCode.Unavailable } r &&
                        r.Status.DebugException is SocketException { SocketErrorCode: SocketError.AddressNotAvailable } or HttpRequestException { InnerException: SocketException { SocketErrorCode: SocketError.AddressNotAvailable } })
                    {
                        _movement?.Recheck("cannot bind to the care-of address");
                    }

                    return ValueTask.CompletedTask;
                },
            })
            .Build();
    }

    /// <summary>Process exit status once stopped: <see cref="MobileAgentHost.ExitClean"/>, <see cref="MobileAgentHost.ExitBindingReplaced"/>, ...</summary>
    public int ExitCode => _exitCode;

    /// <summary>Where the agent is now.</summary>
    public AgentState State => _state;

    /// <summary>The binding id the agent holds now, if any.</summary>
    public string? BindingId => _binding?.Id;

    /// <summary>The care-of address the agent sees now.</summary>
    public IPAddress? CareOfAddress => _movement?.Current.Address;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            _exitCode = await RunAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (NetlinkException e)
        {
            Log.CannotStart(_logger, e.Message);
            _exitCode = MobileAgentHost.ExitCannotStart;
        }
        catch (NetlinkSocketException e)
        {
            Log.CannotStart(_logger, e.Message);
            _exitCode = MobileAgentHost.ExitCannotStart;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Log.Crashed(_logger, e);
            _exitCode = MobileAgentHost.ExitCannotStart;
        }
        finally
        {
            _connection?.Dispose();
            _connection = null;
            if (_movement is not null)
            {
                await _movement.DisposeAsync().ConfigureAwait(false);
            }

            Enter(AgentState.Stopped, "exit status " + _exitCode.ToString(CultureInfo.InvariantCulture));
            _lifetime.StopApplication();
        }
    }

    private async Task<int> RunAsync(CancellationToken stop)
    {
        Log.Started(_logger, _tls.Identity, _options.DeviceId, _options.HomeAgent.ToString(), _options.HomeAgentAddress.ToString(), _netns.Name);
        _movement = new CareOfMonitor(_netns, _options.HomeAgentAddress, _options.TunnelName, _time, _timers, _logger);
        _movement.Start();

        // A previous run that crashed may have left its tunnel: keep it (adopt) while its binding may
        // still be live at the home agent; the first registration re-uses it in place and sweeps the
        // rest; if none comes within the window, it is removed.
        TimeSpan window = _options.Lifetime > _timers.AdoptionWindow ? _options.Lifetime : _timers.AdoptionWindow;
        _adoptUntil = _time.GetUtcNow() + window;

        bool delayFirst = false;
        try
        {
            while (true)
            {
                stop.ThrowIfCancellationRequested();
                CareOf careOf = _movement.Current;
                using CancellationTokenSource expiry = ExpiryTimer();
                if (expiry.IsCancellationRequested)
                {
                    Lapse();
                    continue;
                }

                if (careOf.Address is not { } address)
                {
                    Enter(AgentState.NoRoute, "no route to " + _movement.Target);
                    _binding?.Failed("no route to " + _movement.Target);
                    Log.NoRoute(_logger, _movement.Target.ToString());
                    if (await WaitAsync(careOf.Changed, expiry.Token, stop).ConfigureAwait(false) == Wake.Expired)
                    {
                        Lapse();
                    }

                    continue;
                }

                if (_homePrefix is { } home && home.Contains(address))
                {
                    await GoHomeAsync(address, home.ToString()).ConfigureAwait(false);
                    await WaitAsync(careOf.Changed, CancellationToken.None, stop).ConfigureAwait(false);
                    continue;
                }

                Step step = await CycleAsync(careOf, address, expiry, delayFirst, stop).ConfigureAwait(false);
                delayFirst = false;
                switch (step.Kind)
                {
                    case StepKind.Moved:
                        IPAddress? now = _movement.Current.Address;
                        Log.Moved(_logger, address.ToString(), now?.ToString() ?? "none");
                        Abandon();
                        if (_binding is not null)
                        {
                            Enter(AgentState.Reconnecting, $"moved from {address} to {now?.ToString() ?? "nowhere"}");
                        }

                        break;
                    case StepKind.Expired:
                        Lapse();
                        break;
                    case StepKind.Reconnect:
                        Abandon();
                        if (_binding is { } b)
                        {
                            b.Failed(step.Reason);
                            Log.HeartbeatLost(_logger, step.Reason, b.ExpiresAt);
                            Enter(AgentState.Reconnecting, step.Reason);
                        }

                        delayFirst = step.DelayFirst;
                        break;
                    case StepKind.Reregister:
                        Enter(AgentState.Reconnecting, step.Reason);
                        break;
                    case StepKind.AtHome:
                        await GoHomeAsync(address, _homePrefix is { } p ? p.ToString() : null).ConfigureAwait(false);
                        await WaitAsync(careOf.Changed, CancellationToken.None, stop).ConfigureAwait(false);
                        break;
                    case StepKind.CareOfRefused:
                        Abandon();
                        Log.CareOfRefused(_logger, address.ToString(), step.Reason);
                        _binding?.Failed("care-of address refused: " + step.Reason);
                        Enter(AgentState.NoRoute, "care-of address refused");
                        if (await WaitAsync(careOf.Changed, expiry.Token, stop).ConfigureAwait(false) == Wake.Expired)
                        {
                            Lapse();
                        }

                        break;
                    case StepKind.Replaced:
                        Log.BindingReplaced(_logger, _binding?.Id ?? "", step.Reason);
                        _binding = null;
                        Abandon();
                        ApplyKernel(null);
                        return MobileAgentHost.ExitBindingReplaced;
                    case StepKind.Refused:
                        Log.Refused(_logger, step.Code, step.Reason);
                        await DeregisterAsync().ConfigureAwait(false);
                        Abandon();
                        ApplyKernel(null);
                        return MobileAgentHost.ExitRefused;
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            Enter(AgentState.Stopping, "stop requested");
            await DeregisterAsync().ConfigureAwait(false);
            Abandon();
            ApplyKernel(null);
            Log.Stopped(_logger, MobileAgentHost.ExitClean, "deregistered, kernel state removed");
            return MobileAgentHost.ExitClean;
        }
    }

    /// <summary>One registration (with retries) from <paramref name="address"/> and the heartbeats after it, until something changes.</summary>
    private async Task<Step> CycleAsync(CareOf careOf, IPAddress address, CancellationTokenSource expiry, bool delayFirst, CancellationToken stop)
    {
        using var cycle = CancellationTokenSource.CreateLinkedTokenSource(stop, careOf.Changed, expiry.Token);
        // A Register already sent is not cancelled by a stop: its reply names the binding to deregister.
        using var sent = CancellationTokenSource.CreateLinkedTokenSource(careOf.Changed, expiry.Token);
        Enter(_binding is null ? AgentState.Registering : AgentState.Reconnecting, "registering from " + address);
        try
        {
            if (delayFirst)
            {
                TimeSpan d = _timers.ReconnectBaseDelay * (0.5 + Random.Shared.NextDouble());
                await Task.Delay(d, _time, cycle.Token).ConfigureAwait(false);
            }

            var request = new RegisterRequest
            {
                CareOfAddress = address.ToString(),
                HomeAddress = _options.HomeAddress?.ToString() ?? "",
                RequestedLifetimeSeconds = (uint)_options.Lifetime.TotalSeconds,
                DeviceId = _options.DeviceId,
                Traffic = DesiredState.Traffic(_options),
                Encapsulation = DesiredState.Requested(_options),
            };
            _registeringFrom = address;
            (RegisterReply reply, DateTimeOffset sentAt) = await _retry.ExecuteAsync(
                async ct => await RegisterOnceAsync(request, address, sent.Token, ct).ConfigureAwait(false), cycle.Token).ConfigureAwait(false);
            _inFlight = null;

            MobileAgentState desired;
            try
            {
                desired = DesiredState.From(reply, _options, careOf.Gateway);
            }
            catch (ProtocolViolationException e)
            {
                Log.ProtocolViolation(_logger, e.Message);
                return Step.Refused("PROTOCOL", e.Message);
            }

            TimeSpan lifetime = TimeSpan.FromSeconds(Math.Max(1, reply.GrantedLifetimeSeconds));
            TimeSpan interval = reply.HeartbeatIntervalSeconds > 0
                ? TimeSpan.FromSeconds(reply.HeartbeatIntervalSeconds)
                : ProtocolTimers.HeartbeatInterval(lifetime);
            if (interval < _timers.MinimumHeartbeatInterval)
            {
                interval = _timers.MinimumHeartbeatInterval;
            }

            // The home agent started the lifetime when it answered, after we sent: counting from the
            // send keeps our end from outliving the binding.
            var binding = new LiveBinding(reply.BindingId, desired, sentAt + lifetime, lifetime, interval);
            _binding = binding;
            _homePrefix = desired.HomePrefix;
            _adoptUntil = null;
            Log.Registered(_logger, desired.HomeAddress.ToString(), desired.CareOfAddress.ToString(), desired.HomeAgentAddress.ToString(),
                desired.UdpPort != 0 ? $"ipip-in-UDP (NAT: the home agent saw us from {reply.ObservedAddress})" : "ipip",
                (int)lifetime.TotalSeconds, interval.TotalSeconds, reply.BindingId);

            expiry.CancelAfter(Until(binding.ExpiresAt));

            // The heartbeats start at once, on the channel the reply came over: the binding's
            // lifetime runs at the home agent from the reply on, and a slow kernel write (seconds in
            // a loaded VM) must not keep it from being refreshed.
            Task<Step> heartbeats = HeartbeatAsync(binding, expiry, cycle.Token);

            // In place: after a move only the link's local end (and the pin) change; the first
            // Apply after a start adopts what a previous run left and removes what does not match.
            // Off the loop's thread while the heartbeats run, but still one write at a time: the
            // loop waits for it (a stop or a move included) before it decides anything else.
            await Task.Run(() => ApplyKernel(desired), CancellationToken.None).ConfigureAwait(false);

            Enter(AgentState.Registered, $"binding {reply.BindingId} at {desired.CareOfAddress}");

            // The reply names the home agent's outer address: from now on the care-of address is the
            // source towards it (a change is a move, seen through careOf.Changed).
            _movement!.Retarget(desired.HomeAgentAddress);
            return await heartbeats.ConfigureAwait(false);
        }
        catch (Exception e) when (cycle.IsCancellationRequested && e is OperationCanceledException or RpcException or IOException or ObjectDisposedException or InvalidOperationException)
        {
            // Whatever broke, it broke because the cycle was cancelled (gRPC reports a cancelled
            // call as RpcException Cancelled): say why.
            stop.ThrowIfCancellationRequested();
            return careOf.Changed.IsCancellationRequested ? Step.Of(StepKind.Moved)
                : expiry.IsCancellationRequested ? Step.Of(StepKind.Expired)
                : throw new InvalidOperationException("cycle cancelled for no reason");
        }
        catch (Exception e) when (e is RpcException or SocketException or IOException or HttpRequestException)
        {
            string reason = Refusal.Describe(e);
            return Refusal.Classify(e) switch
            {
                FailureKind.AtHome => Step.Of(StepKind.AtHome, reason),
                FailureKind.CareOfRefused => Step.Of(StepKind.CareOfRefused, reason),
                FailureKind.Transient => Step.Of(StepKind.Reconnect, reason), // cannot happen: the pipeline retries these
                _ => Step.Refused(e is RpcException r ? (Refusal.ReasonOf(r) ?? r.StatusCode.ToString()) : e.GetType().Name, reason),
            };
        }
    }

    /// <summary>One Register call from <paramref name="address"/>, over the current channel if it is sound, else a new one.</summary>
    private async Task<(RegisterReply Reply, DateTimeOffset SentAt)> RegisterOnceAsync(RegisterRequest request, IPAddress address, CancellationToken callToken, CancellationToken cancellationToken)
    {
        if (_connection is null || _connectionSuspect || !_connection.LocalAddress.Equals(address))
        {
            Abandon();
            _connection = HomeAgentConnection.Open(_options.HomeAgent, address, _netns, _tls, _timers, reason => Log.CertificateRejected(_logger, reason));
            _connectionSuspect = false;
        }

        var timeout = new CancellationTokenSource(_timers.RegisterTimeout, _time);
        var attempt = CancellationTokenSource.CreateLinkedTokenSource(callToken, timeout.Token);
        DateTimeOffset sentAt = _time.GetUtcNow();
        Task<RegisterReply> call = CallAsync(_connection.Client, request, timeout, attempt);
        _inFlight = call;
        try
        {
            // The wait ends at a stop; the call itself only at a move, a lapse or its timeout.
            RegisterReply reply = await call.WaitAsync(cancellationToken).ConfigureAwait(false);
            return (reply, sentAt);
        }
        catch (Exception e) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested && e is RpcException or OperationCanceledException)
        {
            throw new TimeoutException($"no reply to Register within {_timers.RegisterTimeout.TotalSeconds:0.#} s");
        }

        static async Task<RegisterReply> CallAsync(Protocol.V1.HomeAgent.HomeAgentClient client, RegisterRequest request, CancellationTokenSource timeout, CancellationTokenSource attempt)
        {
            using (timeout)
            using (attempt)
            {
                return await client.RegisterAsync(request, cancellationToken: attempt.Token).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// The heartbeat stream of <paramref name="binding"/>: a request every interval (the first at
    /// once, which also tells the home agent which stream to send notices to), the lifetime moved
    /// on by every refresh, until a notice, a failure, or a cancellation (move, stop, lapse).
    /// </summary>
    private async Task<Step> HeartbeatAsync(LiveBinding binding, CancellationTokenSource expiry, CancellationToken cycle)
    {
        using var stream = CancellationTokenSource.CreateLinkedTokenSource(cycle);
        using AsyncDuplexStreamingCall<HeartbeatRequest, HeartbeatReply> call = _connection!.Client.Heartbeat(cancellationToken: stream.Token);
        var beats = new BeatTracker(_time);
        Task<Step> reader = ReadHeartbeatsAsync(call.ResponseStream, binding, expiry, beats, stream.Token);
        var request = new HeartbeatRequest { BindingId = binding.Id };
        try
        {
            while (true)
            {
                if (beats.Unanswered)
                {
                    return Step.Of(StepKind.Reconnect, $"no heartbeat reply within {binding.Interval.TotalSeconds:0.#} s");
                }

                beats.Sent();
                await call.RequestStream.WriteAsync(request, stream.Token).ConfigureAwait(false);
                Task tick = Task.Delay(binding.Interval, _time, stream.Token);
                if (await Task.WhenAny(tick, reader).ConfigureAwait(false) == reader)
                {
                    return await reader.ConfigureAwait(false);
                }

                await tick.ConfigureAwait(false);
            }
        }
        catch (Exception e) when (!cycle.IsCancellationRequested && e is RpcException or IOException or InvalidOperationException or OperationCanceledException)
        {
            // The stream broke under the writer; a notice the reader got first says more.
            return reader.IsCompletedSuccessfully ? reader.Result : Step.Of(StepKind.Reconnect, Refusal.Describe(e));
        }
        finally
        {
            await stream.CancelAsync().ConfigureAwait(false);
            await ((Task)reader).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (expiry.IsCancellationRequested && beats.Unanswered)
            {
                binding.Failed("no reply to the heartbeats before the lifetime ran out");
            }
        }
    }

    private async Task<Step> ReadHeartbeatsAsync(IAsyncStreamReader<HeartbeatReply> replies, LiveBinding binding, CancellationTokenSource expiry, BeatTracker beats, CancellationToken cancellationToken)
    {
        string id = binding.Id;
        try
        {
            while (await replies.MoveNext(cancellationToken).ConfigureAwait(false))
            {
                HeartbeatReply r = replies.Current;
                if (r.Notice != HeartbeatReply.Types.Notice.Refreshed)
                {
                    Log.Notice(_logger, r.Notice.ToString(), r.BindingId, r.Reason);
                }

                switch (r.Notice)
                {
                    case HeartbeatReply.Types.Notice.Refreshed when r.BindingId.Length == 0 || r.BindingId == id:
                        DateTimeOffset sentAt = beats.Answered();
                        // The home agent refreshed after we sent: it keeps the binding at least the
                        // granted lifetime from then (remaining_lifetime_seconds is rounded down).
                        TimeSpan remaining = TimeSpan.FromSeconds(r.RemainingLifetimeSeconds);
                        binding.ExpiresAt = sentAt + (remaining >= binding.Lifetime - TimeSpan.FromSeconds(1) ? binding.Lifetime : remaining);
                        binding.Refreshed();
                        expiry.CancelAfter(Until(binding.ExpiresAt));
                        Log.Refreshed(_logger, id, r.RemainingLifetimeSeconds);
                        break;
                    case HeartbeatReply.Types.Notice.BindingReplaced when r.BindingId.Length == 0 || r.BindingId == id:
                        return Step.Of(StepKind.Replaced, r.Reason);
                    case HeartbeatReply.Types.Notice.ShuttingDown:
                        return Step.Of(StepKind.Reconnect, "the home agent is shutting down: " + r.Reason, delayFirst: true);
                    case HeartbeatReply.Types.Notice.Reregister when r.BindingId.Length == 0 || r.BindingId == id:
                        return Step.Of(StepKind.Reregister, "the home agent asks to register again: " + r.Reason);
                }
            }

            return Step.Of(StepKind.Reconnect, "the home agent ended the heartbeat stream");
        }
        catch (RpcException e) when (!cancellationToken.IsCancellationRequested)
        {
            return Step.Of(StepKind.Reconnect, Refusal.Describe(e));
        }
        catch (IOException e) when (!cancellationToken.IsCancellationRequested)
        {
            return Step.Of(StepKind.Reconnect, Refusal.Describe(e));
        }
    }

    /// <summary>The laptop is on its home network: no binding, no tunnel.</summary>
    private async Task GoHomeAsync(IPAddress careOf, string? homePrefix)
    {
        Log.AtHome(_logger, careOf.ToString(), homePrefix is null ? "" : " " + homePrefix);
        await DeregisterAsync().ConfigureAwait(false);
        Abandon();
        ApplyKernel(null);
        _adoptUntil = null;
        Enter(AgentState.AtHome, $"{careOf} is on the home network");
    }

    /// <summary>Ends the binding at the home agent, waiting at most <see cref="AgentTimers.DeregisterTimeout"/>; the binding is dropped here either way.</summary>
    private async Task DeregisterAsync()
    {
        using var timeout = new CancellationTokenSource(_timers.DeregisterTimeout, _time);
        string? id = _binding?.Id;
        if (id is null && _inFlight is { } pending)
        {
            // A Register sent just before the stop: its reply names a binding the home agent now holds.
            try
            {
                id = (await pending.WaitAsync(timeout.Token).ConfigureAwait(false)).BindingId;
            }
            catch (Exception e) when (e is RpcException or OperationCanceledException or IOException or HttpRequestException)
            {
            }
        }

        _inFlight = null;
        _binding = null;
        if (string.IsNullOrEmpty(id))
        {
            return;
        }

        try
        {
            // From where the laptop is now: after a move (home, say) the old address may be gone.
            IPAddress? from = _movement?.Current.Address;
            if (_connection is null || _connectionSuspect || !_connection.LocalAddress.Equals(from))
            {
                Abandon();
                if (from is null)
                {
                    throw new InvalidOperationException("no route to the home agent");
                }

                _connection = HomeAgentConnection.Open(_options.HomeAgent, from, _netns, _tls, _timers, reason => Log.CertificateRejected(_logger, reason));
            }

            await _connection.Client.DeregisterAsync(new DeregisterRequest { BindingId = id }, cancellationToken: timeout.Token).ConfigureAwait(false);
            Log.Deregistered(_logger, id);
        }
        catch (Exception e) when (e is RpcException or OperationCanceledException or InvalidOperationException or IOException or SocketException or HttpRequestException)
        {
            Log.DeregisterFailed(_logger, id, timeout.IsCancellationRequested
                ? $"no reply within {_timers.DeregisterTimeout.TotalSeconds:0.#} s"
                : Refusal.Describe(e));
        }
    }

    /// <summary>The binding's lifetime ran out (or a previous run's state was never confirmed): remove the tunnel.</summary>
    private void Lapse()
    {
        if (_binding is { } b)
        {
            // "Unreachable" only when something towards the home agent really failed (heartbeats
            // unanswered, stream lost, Register retried, no route) since the last refresh.
            Log.BindingExpired(_logger, b.Id, b.ExpiresAt, b.LastFailure is { } failure
                ? "the home agent was unreachable for its whole lifetime (" + failure + ")"
                : "its lifetime ran out before a heartbeat could refresh it, although none failed");
            _binding = null;
            ApplyKernel(null);
            Enter(AgentState.Registering, "binding lapsed");
        }
        else if (_adoptUntil is not null)
        {
            Log.AdoptionEnded(_logger, (int)(_options.Lifetime > _timers.AdoptionWindow ? _options.Lifetime : _timers.AdoptionWindow).TotalSeconds);
            _adoptUntil = null;
            ApplyKernel(null);
        }
    }

    /// <summary>A timer that fires when the live binding (or the adoption window) runs out; never if there is none.</summary>
    private CancellationTokenSource ExpiryTimer()
    {
        DateTimeOffset? until = _binding?.ExpiresAt ?? _adoptUntil;
        if (until is not { } u)
        {
            return new CancellationTokenSource();
        }

        TimeSpan left = u - _time.GetUtcNow();
        if (left <= TimeSpan.Zero)
        {
            var fired = new CancellationTokenSource();
            fired.Cancel();
            return fired;
        }

        return new CancellationTokenSource(left, _time);
    }

    private TimeSpan Until(DateTimeOffset at)
    {
        TimeSpan left = at - _time.GetUtcNow();
        return left > TimeSpan.Zero ? left : TimeSpan.FromTicks(1);
    }

    private void ApplyKernel(MobileAgentState? desired)
    {
        string what = desired?.ToString() ?? "no tunnel";
        KernelOutcome outcome;
        try
        {
            outcome = _kernel.Apply(desired);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The binding logic goes on: the next registration (or the stop) applies again.
            outcome = new KernelOutcome([e.Message]);
        }

        if (outcome.Reached)
        {
            Log.KernelApplied(_logger, what);
        }
        else
        {
            Log.KernelFailed(_logger, what, string.Join("; ", outcome.Errors));
        }
    }

    /// <summary>Drops the current channel at once (its connection is closed, not left to time out).</summary>
    private void Abandon()
    {
        _connection?.Dispose();
        _connection = null;
        _connectionSuspect = false;
    }

    private void Enter(AgentState state, string reason)
    {
        AgentState from = _state;
        if (from == state)
        {
            return;
        }

        _state = state;
        Log.StateChanged(_logger, from.ToString(), state.ToString(), reason);
    }

    private static async Task<Wake> WaitAsync(CancellationToken changed, CancellationToken expiry, CancellationToken stop)
    {
        using var any = CancellationTokenSource.CreateLinkedTokenSource(changed, expiry, stop);
        try
        {
            await Task.Delay(Timeout.Infinite, any.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        stop.ThrowIfCancellationRequested();
        return changed.IsCancellationRequested ? Wake.Moved : Wake.Expired;
    }

    private enum Wake
    {
        Moved,
        Expired,
    }

    private enum StepKind
    {
        Moved,
        Expired,
        Reconnect,
        Reregister,
        AtHome,
        CareOfRefused,
        Replaced,
        Refused,
    }

    /// <summary>How one registration-and-heartbeat cycle ended.</summary>
    private readonly record struct Step(StepKind Kind, string Reason, bool DelayFirst, string Code)
    {
        public static Step Of(StepKind kind, string reason = "", bool delayFirst = false) => new(kind, reason, delayFirst, "");

        public static Step Refused(string code, string reason) => new(StepKind.Refused, reason, false, code);
    }

    /// <summary>A registration the home agent granted, as this end tracks it.</summary>
    private sealed class LiveBinding(string id, MobileAgentState tunnel, DateTimeOffset expiresAt, TimeSpan lifetime, TimeSpan interval)
    {
        public string Id { get; } = id;

        public MobileAgentState Tunnel { get; } = tunnel;

        /// <summary>When the home agent drops it unless refreshed (by our clock, counted from when we sent).</summary>
        public DateTimeOffset ExpiresAt { get; set; } = expiresAt;

        public TimeSpan Lifetime { get; } = lifetime;

        public TimeSpan Interval { get; } = interval;

        /// <summary>What last went wrong towards the home agent since the last refresh (null: nothing).</summary>
        public string? LastFailure => Volatile.Read(ref _lastFailure);

        private string? _lastFailure;

        /// <summary>A heartbeat or a registration from this binding failed.</summary>
        public void Failed(string reason) => Volatile.Write(ref _lastFailure, reason);

        /// <summary>The home agent refreshed the binding: it was reachable.</summary>
        public void Refreshed() => Volatile.Write(ref _lastFailure, null);
    }

    /// <summary>Whether the last heartbeat sent has been answered (a silent home agent is noticed within one interval).</summary>
    private sealed class BeatTracker(TimeProvider time)
    {
        private readonly Lock _lock = new();
        private readonly Queue<DateTimeOffset> _sent = new();
        private readonly TimeProvider _time = time;

        public bool Unanswered
        {
            get
            {
                lock (_lock)
                {
                    return _sent.Count > 0;
                }
            }
        }

        public void Sent()
        {
            lock (_lock)
            {
                _sent.Enqueue(_time.GetUtcNow());
            }
        }

        /// <summary>Marks the oldest heartbeat answered; returns when it was sent.</summary>
        public DateTimeOffset Answered()
        {
            lock (_lock)
            {
                return _sent.TryDequeue(out DateTimeOffset at) ? at : _time.GetUtcNow();
            }
        }
    }
}
