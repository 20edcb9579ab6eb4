using Microsoft.Extensions.Logging;

namespace AgentLab.ServiceDefaults;

/// <summary>Source-generated log messages of ServiceDefaults (event ids 1-99).</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Telemetry: exporting traces, metrics and logs over OTLP/HTTP to {Endpoint}")]
    public static partial void OtlpExportEnabled(this ILogger logger, string endpoint);

    [LoggerMessage(2, LogLevel.Information, "Telemetry: OTEL_EXPORTER_OTLP_ENDPOINT is not set; spans stay in process and nothing is exported")]
    public static partial void OtlpExportDisabled(this ILogger logger);

    [LoggerMessage(10, LogLevel.Warning, "HTTP {Method} {Host} attempt {Attempt} failed ({Outcome}); retrying in {DelayMs} ms")]
    public static partial void RetryingRequest(this ILogger logger, string method, string host, int attempt, string outcome, double delayMs);

    [LoggerMessage(11, LogLevel.Warning, "Circuit to {Host} opened for {BreakSeconds} s after repeated failures; calls fail fast meanwhile")]
    public static partial void CircuitOpened(this ILogger logger, string host, double breakSeconds);

    [LoggerMessage(12, LogLevel.Information, "Circuit to {Host} closed; calls flow again")]
    public static partial void CircuitClosed(this ILogger logger, string host);
}
