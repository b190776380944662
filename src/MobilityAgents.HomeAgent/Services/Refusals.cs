using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using MobilityAgents.Core;
using Status = Google.Rpc.Status;

namespace MobilityAgents.HomeAgent.Services;

/// <summary>
/// Every refusal of the home agent as a gRPC status, in one place: the status code, the message
/// (the reason a user can act on, e.g. "identity alice is not authorized for 192.0.2.77"), and
/// google.rpc details: a <see cref="ErrorInfo"/> whose reason is a stable upper-case code the
/// mobile agent can switch on (domain <see cref="Domain"/>), and for invalid arguments a
/// <see cref="BadRequest"/> naming the request field.
/// </summary>
internal static class Refusals
{
    public const string Domain = "mobilityagents.v1";

    /// <summary>RefusalReason -> status code: the one mapping of Core's refusals.</summary>
    public static StatusCode CodeOf(RefusalReason reason) => reason switch
    {
        RefusalReason.NotAuthorized => StatusCode.PermissionDenied,
        RefusalReason.HeldByAnotherIdentity => StatusCode.PermissionDenied,
        RefusalReason.InvalidCareOfAddress => StatusCode.InvalidArgument,
        RefusalReason.InvalidHomeAddress => StatusCode.InvalidArgument,
        RefusalReason.UnknownBinding => StatusCode.NotFound,
        RefusalReason.AtHome => StatusCode.FailedPrecondition,
        _ => StatusCode.Internal,
    };

    /// <summary>The request field a refusal is about, for the BadRequest detail (null: none).</summary>
    public static string? FieldOf(RefusalReason reason) => reason switch
    {
        RefusalReason.InvalidCareOfAddress => "care_of_address",
        RefusalReason.InvalidHomeAddress => "home_address",
        _ => null,
    };

    /// <summary>The ErrorInfo reason: RefusalReason in SCREAMING_SNAKE_CASE (NOT_AUTHORIZED, AT_HOME, ...).</summary>
    public static string CodeName(RefusalReason reason) => reason switch
    {
        RefusalReason.NotAuthorized => "NOT_AUTHORIZED",
        RefusalReason.HeldByAnotherIdentity => "HELD_BY_ANOTHER_IDENTITY",
        RefusalReason.InvalidCareOfAddress => "INVALID_CARE_OF_ADDRESS",
        RefusalReason.InvalidHomeAddress => "INVALID_HOME_ADDRESS",
        RefusalReason.UnknownBinding => "UNKNOWN_BINDING",
        RefusalReason.AtHome => "AT_HOME",
        _ => "REFUSED",
    };

    public static RpcException From(BindingRefusedException e) =>
        Create(CodeOf(e.Reason), e.Message, CodeName(e.Reason), FieldOf(e.Reason));

    /// <summary>A malformed request field (InvalidArgument with a BadRequest naming <paramref name="field"/>).</summary>
    public static RpcException InvalidArgument(string field, string message) =>
        Create(StatusCode.InvalidArgument, message, "INVALID_ARGUMENT", field);

    /// <summary>The caller's identity may not do this (not about Core's address authorization).</summary>
    public static RpcException NotOperator(string message) =>
        Create(StatusCode.PermissionDenied, message, "NOT_OPERATOR", null);

    public static RpcException NotFound(string message) =>
        Create(StatusCode.NotFound, message, "NOT_FOUND", null);

    /// <summary>No usable client identity on the connection.</summary>
    public static RpcException Unauthenticated(string message) =>
        Create(StatusCode.Unauthenticated, message, "NO_CLIENT_IDENTITY", null);

    public static RpcException ShuttingDown() =>
        Create(StatusCode.Unavailable, "the home agent is shutting down: reconnect when it is back", "SHUTTING_DOWN", null);

    private static RpcException Create(StatusCode code, string message, string reason, string? field)
    {
        var status = new Status { Code = (int)code, Message = message };
        status.Details.Add(Any.Pack(new ErrorInfo { Reason = reason, Domain = Domain }));
        if (field is not null)
        {
            status.Details.Add(Any.Pack(new BadRequest
            {
                FieldViolations = { new BadRequest.Types.FieldViolation { Field = field, Description = message } },
            }));
        }

        return status.ToRpcException();
    }
}
