using Microsoft.AspNetCore.Routing;

namespace AgentLab.AppHost.Dashboard.Telemetry;

/// <summary>PLACEHOLDER (foundation): the dashboard's JSON API over the telemetry store (/api/logs, /api/traces, /api/metrics).</summary>
public static class TelemetryApi
{
    public static IEndpointRouteBuilder MapTelemetryApi(this IEndpointRouteBuilder endpoints) => endpoints;
}
