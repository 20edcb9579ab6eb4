using System.Globalization;
using AgentLab.LabService.Models;
using AgentLab.LabService.Ollama;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Diagnostics;

namespace AgentLab.LabService;

/// <summary>A failure as the caller sees it: status, stable code, and a message that says what to do.</summary>
public sealed record LabError(int Status, string Code, string Title, string Detail, TimeSpan? RetryAfter = null,
    IReadOnlyList<KeyValuePair<string, object?>>? Extensions = null);

/// <summary>
/// The one place model-server and model-resolution failures become ProblemDetails (and, via <see cref="TryMap"/>,
/// NDJSON error events). None of these is ever a 500.
/// </summary>
public sealed class LabExceptionHandler(ILogger<LabExceptionHandler> logger) : IExceptionHandler
{
    private static readonly TimeSpan UnavailableRetryAfter = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan BusyRetryAfter = TimeSpan.FromSeconds(5);

    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (TryMap(exception) is not { } error || httpContext.Response.HasStarted)
            return false;

        logger.RequestFailed(error.Status, error.Code, exception.Message);
        if (error.RetryAfter is { } retryAfter)
            httpContext.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        await Problems.Create(error.Status, error.Code, error.Title, error.Detail, error.Extensions).ExecuteAsync(httpContext);
        return true;
    }

    /// <summary>Maps a known failure to what the caller sees; null for anything else (a bug: let it be a 500).</summary>
    public static LabError? TryMap(Exception exception) => exception switch
    {
        ModelNotFoundException e => new LabError(StatusCodes.Status404NotFound, "model_not_found", "Model not found", e.Message,
            Extensions: [new("requested_model", e.Requested), new("close_matches", e.CloseMatches.Select(m => m.Name).ToArray())]),
        OllamaModelNotFoundException e => new LabError(StatusCodes.Status404NotFound, "model_not_found", "Model not found", e.Message,
            Extensions: [new("requested_model", e.Model), new("close_matches", Array.Empty<string>())]),
        OllamaUnavailableException e => new LabError(StatusCodes.Status503ServiceUnavailable, "model_unavailable",
            "Model server unavailable", e.Message, UnavailableRetryAfter),
        OllamaBusyException e => new LabError(StatusCodes.Status503ServiceUnavailable, "model_unavailable",
            "Model server busy", e.Message, e.RetryAfter ?? BusyRetryAfter),
        OllamaTimeoutException e => new LabError(StatusCodes.Status504GatewayTimeout, "model_timeout", "Model call timed out", e.Message,
            Extensions: [new("phase", PhaseName(e.Phase)), new("limit_seconds", e.Limit.TotalSeconds)]),
        OllamaServerException e => new LabError(StatusCodes.Status502BadGateway, "model_error", "The model failed", e.Message),
        ModelNotCapableException e => new LabError(StatusCodes.Status422UnprocessableEntity, "model_not_capable",
            "The model cannot do this", e.Message, Extensions: [new("model", e.Model.Name), new("capabilities", e.Model.Capabilities)]),
        // Ollama's other 4xx answers are about what was asked of the model (tools, thinking, options it lacks).
        OllamaRequestException e => new LabError(StatusCodes.Status422UnprocessableEntity, "model_rejected_request",
            "The model server refused the request", e.Message),
        _ => null,
    };

    public static string PhaseName(OllamaTimeoutPhase phase) => phase switch
    {
        OllamaTimeoutPhase.FirstToken => "first_token",
        OllamaTimeoutPhase.Idle => "idle",
        _ => "total",
    };
}
