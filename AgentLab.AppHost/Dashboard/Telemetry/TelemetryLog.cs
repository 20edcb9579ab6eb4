using Microsoft.Extensions.Logging;

namespace AgentLab.AppHost.Dashboard.Telemetry;

/// <summary>The telemetry part's log lines (event ids 3001–3019).</summary>
internal static partial class TelemetryLog
{
    [LoggerMessage(3001, LogLevel.Warning, "An OTLP {Signal} export could not be decoded and was refused with 400: {Reason}")]
    public static partial void OtlpUndecodable(this ILogger logger, string signal, string reason);
}
