using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AgentLab.ServiceDefaults;

/// <summary>
/// RFC 9457 problem responses with AgentLab's stable machine-readable <c>code</c>.
/// The <c>trace_id</c> is added to every problem by the ProblemDetails customisation in AddServiceDefaults.
/// </summary>
public static class Problems
{
    /// <summary>The extension key that carries the stable error code.</summary>
    public const string CodeKey = "code";

    /// <summary>The extension key that carries the W3C trace id.</summary>
    public const string TraceIdKey = "trace_id";

    /// <summary>A problem result with a stable code, for handlers and exception handlers.</summary>
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
}
