using Microsoft.Extensions.Logging;

namespace AgentLab.AppHost.Dashboard.Telemetry;

/// <summary>The telemetry part's log lines (event ids 3001–3019).</summary>
internal static partial class TelemetryLog
{
    [LoggerMessage(3001, LogLevel.Warning, "An OTLP {Signal} export could not be decoded and was refused with 400: {Reason}")]
    public static partial void OtlpUndecodable(this ILogger logger, string signal, string reason);

    [LoggerMessage(3002, LogLevel.Warning,
        "An OTLP export to {Path} was refused with 401: it carried {What} x-otlp-api-key header. Services the AppHost starts get the key " +
        "in OTEL_EXPORTER_OTLP_HEADERS; another process must send Dashboard:OtlpApiKey. (Said once per run.)")]
    public static partial void OtlpApiKeyRefused(this ILogger logger, string path, string what);
}
