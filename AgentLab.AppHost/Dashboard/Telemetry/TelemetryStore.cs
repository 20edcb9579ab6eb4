namespace AgentLab.AppHost.Dashboard.Telemetry;

/// <summary>PLACEHOLDER (foundation): the bounded in-memory window of spans, log records and metric points.</summary>
public sealed class TelemetryStore(DashboardOptions options)
{
    public DashboardOptions Options { get; } = options;
}
