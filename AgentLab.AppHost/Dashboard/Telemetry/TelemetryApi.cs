using System.Globalization;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;

namespace AgentLab.AppHost.Dashboard.Telemetry;

/// <summary>The dashboard's JSON API over the telemetry store: /api/logs, /api/traces, /api/traces/{traceId}, /api/metrics.</summary>
public static class TelemetryApi
{
    public const int MaxLogLimit = 5_000;
    public const int MaxTraceLimit = 1_000;
    public const int MaxMinutes = 24 * 60;

    public static IEndpointRouteBuilder MapTelemetryApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/api/logs", GetLogs);
        endpoints.MapGet("/api/traces", GetTraces);
        endpoints.MapGet("/api/traces/{traceId}", GetTrace);
        endpoints.MapGet("/api/metrics", GetMetrics);
        return endpoints;
    }

    public static Results<JsonHttpResult<LogsPage>, ProblemHttpResult> GetLogs(TelemetryStore store,
        string? resource = null, string? level = null,
        [FromQuery(Name = "execution_id")] string? executionId = null,
        [FromQuery(Name = "trace_id")] string? traceId = null,
        string? q = null, string? limit = null)
    {
        LogLevelName? minLevel = null;
        if (!string.IsNullOrEmpty(level))
        {
            // Names only: Enum.TryParse would also take "3".
            if (!level.All(char.IsAsciiLetter) || !Enum.TryParse<LogLevelName>(level, ignoreCase: true, out var parsed))
            {
                return Problems.Create(StatusCodes.Status400BadRequest, "invalid_query", "Unknown log level",
                    $"level '{level}' is not one of trace, debug, information, warning, error, critical.");
            }
            minLevel = parsed;
        }
        if (!TryLimit(limit, 200, MaxLogLimit, "limit", out var take, out var problem))
            return problem;
        var page = store.QueryLogs(new LogQuery(resource, minLevel, executionId, traceId, q, take));
        return TypedResults.Json(page, DashboardJson.Options);
    }

    public static Results<JsonHttpResult<TracesPage>, ProblemHttpResult> GetTraces(TelemetryStore store,
        string? resource = null, [FromQuery(Name = "execution_id")] string? executionId = null, string? limit = null)
    {
        if (!TryLimit(limit, 100, MaxTraceLimit, "limit", out var take, out var problem))
            return problem;
        return TypedResults.Json(store.QueryTraces(new TraceQuery(resource, executionId, take)), DashboardJson.Options);
    }

    public static Results<JsonHttpResult<TraceDetail>, ProblemHttpResult> GetTrace(TelemetryStore store, string traceId) =>
        store.GetTrace(traceId) is { } trace
            ? TypedResults.Json(trace, DashboardJson.Options)
            : Problems.Create(StatusCodes.Status404NotFound, "trace_not_found", "Trace not found",
                $"No span of trace '{OtlpValues.Cut(traceId, 64)}' is kept: it has not arrived yet (services export every " +
                $"{store.Options.ExportDelayMilliseconds} ms) or it was dropped to keep the newest {store.Options.MaxSpans} spans.");

    public static Results<JsonHttpResult<MetricsView>, ProblemHttpResult> GetMetrics(TelemetryStore store,
        string? resource = null, string? minutes = null)
    {
        if (!TryLimit(minutes, 15, MaxMinutes, "minutes", out var window, out var problem))
            return problem;
        return TypedResults.Json(store.GetMetrics(resource, TimeSpan.FromMinutes(window)), DashboardJson.Options);
    }

    private static bool TryLimit(string? text, int fallback, int max, string name, out int value, out ProblemHttpResult problem)
    {
        problem = null!;
        value = fallback;
        if (string.IsNullOrEmpty(text))
            return true;
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= 1)
        {
            value = Math.Min(value, max);
            return true;
        }
        problem = Problems.Create(StatusCodes.Status400BadRequest, "invalid_query", $"Invalid {name}",
            $"{name} '{OtlpValues.Cut(text, 32)}' must be a whole number from 1 (larger values are capped at {max}).");
        return false;
    }
}
