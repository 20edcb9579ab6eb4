using System.Text.Json;

namespace AgentLab.Backend.Lab;

/// <summary>A LabService call failed; <see cref="Errors.BackendExceptionHandler"/> turns it into a problem reply.</summary>
public abstract class LabServiceException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The execution the call belonged to, when there is one; echoed in the problem.</summary>
    public Guid? ExecutionId { get; set; }
}

/// <summary>LabService answered with an error (normally an RFC 9457 problem document); passed through to the caller.</summary>
public sealed class LabServiceProblemException(
    int status, string code, string title, string? detail,
    IReadOnlyDictionary<string, JsonElement> extensions, string? retryAfter)
    : LabServiceException($"LabService answered {status} {code}: {title}")
{
    public int Status { get; } = status;
    public string Code { get; } = code;
    public string Title { get; } = title;
    public string? Detail { get; } = detail;

    /// <summary>Problem members other than type/title/status/detail/instance/code/trace_id (e.g. <c>close_matches</c>).</summary>
    public IReadOnlyDictionary<string, JsonElement> Extensions { get; } = extensions;

    /// <summary>LabService's <c>Retry-After</c> header value, as sent.</summary>
    public string? RetryAfter { get; } = retryAfter;
}

/// <summary>LabService could not be reached or the connection broke (refused, connect timeout, reset).</summary>
public sealed class LabServiceUnavailableException(string reason, Exception? inner = null)
    : LabServiceException($"LabService is unreachable: {reason}", inner)
{
    public string Reason { get; } = reason;
}

/// <summary>LabService did not answer within the execution's time budget.</summary>
public sealed class LabServiceTimeoutException(TimeSpan timeout)
    : LabServiceException($"LabService did not answer within {timeout.TotalSeconds:0.#} s")
{
    public TimeSpan Timeout { get; } = timeout;
}
