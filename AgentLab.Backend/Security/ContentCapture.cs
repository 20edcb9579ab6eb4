using AgentLab.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Security;

/// <summary>
/// Prompt text in logs, only when <c>Telemetry:CaptureContent</c> turns it on (off by default: prompts are user
/// data). The console formatter escapes whatever control characters the prompt holds.
/// </summary>
internal static partial class ContentCapture
{
    /// <summary>Logs a preview of <paramref name="prompt"/> at Information when content capture is on; nothing otherwise.</summary>
    public static void PromptAccepted(HttpContext http, Guid executionId, string? prompt)
    {
        var options = http.RequestServices.GetRequiredService<IOptions<TelemetryOptions>>().Value;
        if (!options.CaptureContent || prompt is null)
            return;
        var logger = http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ContentCapture).FullName!);
        logger.PromptCaptured(executionId, prompt.Length, options.Preview(prompt));
    }

    [LoggerMessage(1835, LogLevel.Information, "Execution {ExecutionId} prompt ({PromptChars} chars; Telemetry:CaptureContent is on): {PromptPreview}")]
    private static partial void PromptCaptured(this ILogger logger, Guid executionId, int promptChars, string promptPreview);
}
