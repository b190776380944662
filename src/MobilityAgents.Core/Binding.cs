using System.Net;

namespace MobilityAgents.Core;

/// <summary>How the tunnel's outer packets are carried.</summary>
public enum Encapsulation
{
    /// <summary>IP protocol 4 (RFC 2003).</summary>
    Ipip = 1,

    /// <summary>The inner packet directly in UDP (for laptops behind NAT).</summary>
    IpipUdp = 2,
}

/// <summary>A laptop's binding: its home address is reachable through a tunnel to its care-of address until <see cref="ExpiresAt"/>.</summary>
/// <param name="Id">Random, unguessable; a new one for each new or replaced binding, kept across refreshes and moves.</param>
/// <param name="Identity">The laptop's certificate identity.</param>
/// <param name="DeviceId">The device within that identity.</param>
/// <param name="HomeAddress">The home address the binding carries.</param>
/// <param name="CareOfAddress">The laptop's current address: the tunnel's remote end.</param>
/// <param name="Encapsulation">How outer packets are carried.</param>
/// <param name="RegisteredAt">When this binding (this id) was created.</param>
/// <param name="ExpiresAt">When it lapses unless refreshed.</param>
/// <param name="Lifetime">The granted lifetime: each refresh moves <paramref name="ExpiresAt"/> to now + this.</param>
public sealed record Binding(
    string Id,
    string Identity,
    string DeviceId,
    IPAddress HomeAddress,
    IPAddress CareOfAddress,
    Encapsulation Encapsulation,
    DateTimeOffset RegisteredAt,
    DateTimeOffset ExpiresAt,
    TimeSpan Lifetime);

/// <summary>What happened to a binding.</summary>
public enum BindingChange
{
    Created,
    Moved,
    Refreshed,
    Replaced,
    Expired,
    Deregistered,
}

/// <summary>An event out of the binding table. <paramref name="Previous"/> is the binding before a move or replacement.</summary>
public sealed record BindingEvent(BindingChange Change, Binding Binding, Binding? Previous = null);

/// <summary>Why a request was refused; the gRPC layer maps each to a status code.</summary>
public enum RefusalReason
{
    /// <summary>The identity may not claim that home address (PermissionDenied).</summary>
    NotAuthorized,

    /// <summary>The care-of address is not a usable unicast address (InvalidArgument).</summary>
    InvalidCareOfAddress,

    /// <summary>The home address is malformed or outside the home prefix (InvalidArgument).</summary>
    InvalidHomeAddress,

    /// <summary>Another identity holds the home address (PermissionDenied).</summary>
    HeldByAnotherIdentity,

    /// <summary>No such binding for this identity (NotFound).</summary>
    UnknownBinding,

    /// <summary>The care-of address is on the home network: the laptop is home (FailedPrecondition).</summary>
    AtHome,
}

/// <summary>A refusal with a reason a user can act on.</summary>
public sealed class BindingRefusedException(RefusalReason reason, string message) : Exception(message)
{
    public RefusalReason Reason { get; } = reason;
}
