using System.ComponentModel.DataAnnotations;
using System.Net;

namespace AgentLab.AppHost.Dashboard;

/// <summary>The dashboard and its OTLP receiver (configuration section <c>Dashboard</c>; <c>--Dashboard:Port=0</c> on the command line).</summary>
public sealed class DashboardOptions
{
    public const string Section = "Dashboard";

    /// <summary>Serve the dashboard and receive the services' telemetry. Off: no OTLP endpoint is injected.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Where the dashboard listens. Loopback by default; any other address (0.0.0.0, a LAN address) requires
    /// <see cref="AccessToken"/>, because the dashboard shows logs and can stop resources.
    /// </summary>
    public string Address { get; set; } = "127.0.0.1";

    /// <summary>The dashboard's port (Aspire's default 18888); 0 picks a free port.</summary>
    [Range(0, 65535)] public int Port { get; set; } = 18888;

    /// <summary>The OTLP/HTTP receiver's port (Aspire's default 18890); 0 picks a free port. It always binds to loopback.</summary>
    [Range(0, 65535)] public int OtlpPort { get; set; } = 18890;

    /// <summary>
    /// Required when <see cref="Address"/> is not loopback: the browser signs in once with <c>/login?t=...</c> (a cookie
    /// follows), API calls may send <c>Authorization: Bearer ...</c>. At least 16 characters.
    /// </summary>
    public string? AccessToken { get; set; }

    /// <summary>
    /// The key the OTLP receiver requires in the <c>x-otlp-api-key</c> header (Aspire's); every service the AppHost
    /// starts gets it in <c>OTEL_EXPORTER_OTLP_HEADERS</c>. Unset: a random key for each run. Set it (at least 16
    /// characters) to export from a process the AppHost does not start.
    /// </summary>
    public string? OtlpApiKey { get; set; }

    /// <summary>Spans kept in memory; the oldest are dropped first.</summary>
    [Range(100, 10_000_000)] public int MaxSpans { get; set; } = 20_000;

    /// <summary>Structured log records kept in memory; the oldest are dropped first.</summary>
    [Range(100, 10_000_000)] public int MaxLogRecords { get; set; } = 20_000;

    /// <summary>Points kept per metric series (one per export); the oldest are dropped first.</summary>
    [Range(10, 1_000_000)] public int MaxMetricPoints { get; set; } = 720;

    /// <summary>How often services export metrics (<c>OTEL_METRIC_EXPORT_INTERVAL</c>; the SDK's default is 60 s).</summary>
    [Range(100, 600_000)] public int MetricExportIntervalMilliseconds { get; set; } = 5_000;

    /// <summary>How long services batch spans and logs before export (<c>OTEL_BSP_SCHEDULE_DELAY</c>, <c>OTEL_BLRP_SCHEDULE_DELAY</c>; default 5 s).</summary>
    [Range(50, 600_000)] public int ExportDelayMilliseconds { get; set; } = 1_000;

    /// <summary>True when <see cref="Address"/> is a loopback address or <c>localhost</c>.</summary>
    public bool IsLoopback =>
        string.Equals(Address, "localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(Address, out var ip) && IPAddress.IsLoopback(ip));
}
