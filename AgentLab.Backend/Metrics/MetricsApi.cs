using System.Diagnostics;
using AgentLab.Backend.History;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Metrics;

/// <summary><c>GET /api/v1/metrics</c>: counts, error rate, latency percentiles and tokens, in total and by type, model and status.</summary>
public static class MetricsApi
{
    public static RouteGroupBuilder MapMetricsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1").WithTags("Metrics");

        group.MapGet("/metrics", GetMetricsAsync)
            .WithName("GetMetrics")
            .WithSummary("Execution metrics, in total and by type, model and status")
            .WithDescription(
                "Executions created in [from, to) (ISO 8601 with an offset; both optional): count, completed, failed (failed + " +
                "timed_out), cancelled, error_rate (failed / finished), p50/p95/p99 of duration_ms and time_to_first_token_ms " +
                "(percentile_cont over values estimated from log-spaced histograms: exact for sparse values, never off by more than one " +
                "9 % bin), prompt " +
                "and completion token sums, and tokens_per_second (completion tokens / generation time of completed executions). " +
                "Over the caller's own executions; a caller with the admin role gets every owner's, or one subject's with owner.")
            .Produces<MetricsReport>(StatusCodes.Status200OK)
            .ProducesProblem(StatusCodes.Status400BadRequest);

        return group;
    }

    public static async Task<Results<JsonHttpResult<MetricsReport>, ProblemHttpResult>> GetMetricsAsync(
        [FromQuery] string? from, [FromQuery] string? to,
        HttpContext context, MetricsQuery query, TimeProvider time, IOptions<HistoryOptions> options, ILogger<MetricsQuery> logger, CancellationToken ct)
    {
        var parameters = new QueryParameters();
        var window = parameters.Window(from, to);
        if (parameters.Problem() is { } problem)
            return problem;
        // Figures over the caller's own executions; an admin's over everyone's (or one owner's).
        var (owner, badOwner) = HistoryApi.ReadOwner(context);
        if (badOwner is not null)
            return badOwner;

        var started = Stopwatch.GetTimestamp();
        var report = await query.ReadAsync(owner, window.From, window.To, time.GetUtcNow(), ct);
        var elapsed = Stopwatch.GetElapsedTime(started);
        if (elapsed.TotalMilliseconds > options.Value.SlowQueryMilliseconds)
            logger.MetricsSlow(elapsed.TotalMilliseconds, window.From, window.To);
        return TypedResults.Json(report, BackendJsonContext.Wire.MetricsReport);
    }
}
