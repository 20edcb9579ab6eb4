using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AgentLab.ServiceDefaults;

/// <summary>
/// RFC 9457 problem responses with AgentLab's stable machine-readable <c>code</c>.
/// The <c>trace_id</c> (and <c>execution_id</c> when one is current) is added to every problem by the
/// ProblemDetails customisation in AddServiceDefaults, which also fills in a default <c>code</c> from the status.
/// </summary>
public static class Problems
{
    /// <summary>The extension key that carries the stable error code.</summary>
    public const string CodeKey = "code";

    /// <summary>The extension key that carries the W3C trace id.</summary>
    public const string TraceIdKey = "trace_id";

    /// <summary>The extension key that carries the execution ID, when the request has one.</summary>
    public const string ExecutionIdKey = "execution_id";

    /// <summary>A problem result with a stable code, for handlers and exception handlers.</summary>
    /// <remarks>
    /// <see cref="ProblemHttpResult"/> writes through <see cref="IProblemDetailsService"/> when one is registered
    /// (AddServiceDefaults registers it), so the result gets <c>trace_id</c> like every other problem.
    /// </remarks>
    public static ProblemHttpResult Create(int status, string code, string title, string? detail = null,
        IEnumerable<KeyValuePair<string, object?>>? extensions = null)
    {
        var all = new Dictionary<string, object?>(StringComparer.Ordinal) { [CodeKey] = code };
        if (extensions is not null)
        {
            foreach (var (key, value) in extensions)
                all[key] = value;
        }
        return TypedResults.Problem(detail, statusCode: status, title: title, extensions: all);
    }

    /// <summary>The stable code used when a problem has none, derived from its HTTP status.</summary>
    public static string DefaultCode(int status) => status switch
    {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "unprocessable_entity",
        429 => "rate_limited",
        500 => "internal_error",
        501 => "not_implemented",
        502 => "bad_gateway",
        503 => "unavailable",
        504 => "gateway_timeout",
        >= 500 => "internal_error",
        _ => "client_error",
    };

    /// <summary>The ProblemDetails customisation AddServiceDefaults installs.</summary>
    internal static void Customize(ProblemDetailsContext context)
    {
        var problem = context.ProblemDetails;
        var status = problem.Status ?? context.HttpContext.Response.StatusCode;

        // The framework adds a camelCase traceId; the wire contract is snake_case, so keep only ours.
        problem.Extensions.Remove("traceId");
        problem.Extensions[TraceIdKey] = Activity.Current?.TraceId.ToString() ?? context.HttpContext.TraceIdentifier;
        if (AgentLabExecution.CurrentId is { } executionId)
            problem.Extensions[ExecutionIdKey] = executionId;
        if (!problem.Extensions.TryGetValue(CodeKey, out var code) || code is null)
            problem.Extensions[CodeKey] = DefaultCode(status);

        // Outside Development the exception handler already writes a generic title; make sure no detail leaks either.
        if (status >= 500 && context.Exception is not null)
            problem.Detail = null;
    }
}
