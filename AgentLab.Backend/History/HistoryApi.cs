using System.Diagnostics;
using AgentLab.Backend.Security;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.History;

/// <summary><c>GET /api/v1/history</c>: executions newest first, filtered, keyset-paged with an opaque cursor.</summary>
public static class HistoryApi
{
    public static RouteGroupBuilder MapHistoryApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1").WithTags("History");

        group.MapGet("/history", GetHistoryAsync)
            .WithName("GetHistory")
            .WithSummary("List executions, newest first")
            .WithDescription(
                "Summaries (no prompt or output) ordered by created_at then id, newest first. Filters: status (one or more, " +
                "comma-separated), execution_type, model (exact), from (inclusive) and to (exclusive) as ISO 8601 with an offset. " +
                "limit is 1-100 (default 20). Pass next_cursor back as cursor for the next page; it is null on the last page. " +
                "Lists the caller's own executions; a caller with the admin role sees every owner's, and may pass owner to see one " +
                "subject's (owner= with no value: executions older than authentication).")
            .Produces<HistoryPage>(StatusCodes.Status200OK)
            .ProducesProblem(StatusCodes.Status400BadRequest);

        return group;
    }

    public static async Task<Results<JsonHttpResult<HistoryPage>, ProblemHttpResult>> GetHistoryAsync(
        [FromQuery] string[]? status,
        [FromQuery(Name = "execution_type")] string? executionType,
        [FromQuery] string? model,
        [FromQuery] string? from,
        [FromQuery] string? to,
        [FromQuery] string? limit,
        [FromQuery] string? cursor,
        HttpContext context, HistoryQuery query, IOptions<HistoryOptions> options, ILogger<HistoryQuery> logger, CancellationToken ct)
    {
        // Read as strings and validated here, so every bad value gets a problem naming its field rather than the
        // framework's bare 400.
        var (filter, problem) = HistoryFilter.Read(status, executionType, model, from, to, limit, cursor, options.Value);
        if (problem is not null)
            return problem;
        var (owner, badOwner) = ReadOwner(context);
        if (badOwner is not null)
            return badOwner;
        filter = filter! with { Owner = owner };

        var started = Stopwatch.GetTimestamp();
        var page = await query.ReadAsync(filter!, ct);
        var elapsed = Stopwatch.GetElapsedTime(started);
        if (elapsed.TotalMilliseconds > options.Value.SlowQueryMilliseconds)
            logger.HistorySlow(elapsed.TotalMilliseconds, filter!.Statuses.Count, filter.ExecutionType, filter.Model, filter.After is not null);
        return TypedResults.Json(page, BackendJsonContext.Wire.HistoryPage);
    }

    /// <summary>
    /// Whose executions to read (history and metrics): the caller's own; for an admin every owner's (null), or the one the <c>owner</c>
    /// parameter names. A non-admin may only name itself.
    /// </summary>
    public static (string? Owner, ProblemHttpResult? Problem) ReadOwner(HttpContext context)
    {
        var caller = context.Caller();
        var values = context.Request.Query["owner"];
        if (values.Count == 0)
            return (caller.OwnerFilter, null);
        var named = values.Count == 1 ? values[0] ?? "" : null;
        string? error = null;
        if (named is null)
            error = "Send owner at most once.";
        else if (named.Length > 200)
            error = "The owner is longer than 200 characters; no subject has such a name.";
        else if (!caller.CanSee(named))
            error = "Only a caller with the admin role may read another subject's executions; leave owner out to read your own.";
        if (error is null)
            return (named, null);
        var parameters = new QueryParameters();
        parameters.Add("owner", error);
        return (null, parameters.Problem());
    }
}
