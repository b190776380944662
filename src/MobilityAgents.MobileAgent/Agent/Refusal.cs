using System.Net.Sockets;
using System.Security.Authentication;
using Google.Rpc;
using Grpc.Core;

namespace MobilityAgents.MobileAgent.Agent;

/// <summary>What a failed call means for the agent.</summary>
public enum FailureKind
{
    /// <summary>The home agent is unreachable or busy: try again with backoff.</summary>
    Transient,

    /// <summary>The care-of address is on the home network: the laptop is home.</summary>
    AtHome,

    /// <summary>The home agent does not accept this care-of address (e.g. link-local): wait for another.</summary>
    CareOfRefused,

    /// <summary>The home agent will never accept this registration (not authorized, bad identity): stop.</summary>
    Permanent,
}

/// <summary>
/// Reads the home agent's refusals: the gRPC status code and the google.rpc.ErrorInfo reason
/// (domain mobilityagents.v1) the protocol promises on every refusal.
/// </summary>
public static class Refusal
{
    public const string Domain = "mobilityagents.v1";

    /// <summary>The ErrorInfo reason of a refusal ("AT_HOME", "NOT_AUTHORIZED", ...), or null.</summary>
    public static string? ReasonOf(RpcException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        try
        {
            return e.GetRpcStatus()?.GetDetail<ErrorInfo>() is { Domain: Domain } info ? info.Reason : null;
        }
        catch (Google.Protobuf.InvalidProtocolBufferException)
        {
            return null;
        }
    }

    /// <summary>What an exception out of a call means.</summary>
    public static FailureKind Classify(Exception e) => e switch
    {
        RpcException r => Classify(r),
        SocketException or IOException or HttpRequestException or AuthenticationException or TimeoutException => FailureKind.Transient,
        _ => FailureKind.Permanent,
    };

    public static FailureKind Classify(RpcException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        string? reason = ReasonOf(e);
        return (e.StatusCode, reason) switch
        {
            (_, "AT_HOME") => FailureKind.AtHome,
            (_, "INVALID_CARE_OF_ADDRESS") => FailureKind.CareOfRefused,
            (_, "SHUTTING_DOWN") => FailureKind.Transient,
            (StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Internal or StatusCode.Unknown or
             StatusCode.ResourceExhausted or StatusCode.Aborted or StatusCode.Cancelled or StatusCode.DataLoss, _) => FailureKind.Transient,
            _ => FailureKind.Permanent,
        };
    }

    /// <summary>One line for the log: the status code and the home agent's reason (or the innermost exception's message).</summary>
    public static string Describe(Exception e)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e is RpcException r)
        {
            string detail = r.Status.Detail;
            if (r.Status.DebugException is { } inner)
            {
                detail = Innermost(inner);
            }

            return $"{r.StatusCode}: {detail}";
        }

        return Innermost(e);
    }

    private static string Innermost(Exception e)
    {
        string message = e.Message;
        for (Exception? x = e.InnerException; x is not null; x = x.InnerException)
        {
            message = x.Message;
        }

        return message;
    }
}
