using AgentLab.Backend.Data;
using AgentLab.Backend.Executions;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AgentLab.Backend.History;

/// <summary>What one history page asks for: filters, page size, and where the previous page ended.</summary>
public sealed record HistoryFilter
{
    /// <summary>Any of these statuses; empty for all.</summary>
    public IReadOnlyList<string> Statuses { get; init; } = [];
    public string? ExecutionType { get; init; }

    /// <summary>The model exactly as stored (the resolved tag once it ran, e.g. <c>mistral:7b</c>).</summary>
    public string? Model { get; init; }

    /// <summary>Inclusive lower bound on <c>created_at</c>.</summary>
    public DateTimeOffset? From { get; init; }

    /// <summary>Exclusive upper bound on <c>created_at</c>.</summary>
    public DateTimeOffset? To { get; init; }
    public int Limit { get; init; } = 20;

    /// <summary>Rows strictly older than this position, in <c>(created_at DESC, id DESC)</c> order.</summary>
    public HistoryCursor? After { get; init; }

    /// <summary>Only this owner's executions (a non-admin's own subject); null for every owner's (an admin's view).</summary>
    public string? Owner { get; init; }

    /// <summary>
    /// Reads the query parameters: the filter, or the problem to answer with (400 <c>validation_failed</c> naming each
    /// bad field, or 400 <c>invalid_cursor</c>).
    /// </summary>
    public static (HistoryFilter? Filter, ProblemHttpResult? Problem) Read(IEnumerable<string?>? status, string? executionType, string? model,
        string? from, string? to, string? limit, string? cursor, HistoryOptions options)
    {
        var parameters = new QueryParameters();

        // Both "status=failed,timed_out" and "status=failed&status=timed_out".
        var statuses = new List<string>();
        foreach (var value in (status ?? []).SelectMany(s => (s ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)))
        {
            var known = Array.Find(ExecutionStatus.All, s => string.Equals(s, value, StringComparison.OrdinalIgnoreCase));
            if (known is null)
            {
                parameters.Add("status", $"'{QueryParameters.Shorten(value)}' is not a status; use one or more (comma-separated) of: {string.Join(", ", ExecutionStatus.All)}.");
                break;
            }
            if (!statuses.Contains(known))
                statuses.Add(known);
        }

        string? type = null;
        if (!string.IsNullOrWhiteSpace(executionType))
        {
            type = Array.Find(ExecutionKinds.ExecutionTypes, t => string.Equals(t, executionType.Trim(), StringComparison.OrdinalIgnoreCase));
            if (type is null)
                parameters.Add("execution_type", $"'{QueryParameters.Shorten(executionType)}' is not an execution type; use one of: {string.Join(", ", ExecutionKinds.ExecutionTypes)}.");
        }

        if (model is { Length: > 200 })
            parameters.Add("model", "The model name is longer than 200 characters; no model has such a name.");

        var (start, end) = parameters.Window(from, to);

        var pageSize = options.DefaultLimit;
        if (!string.IsNullOrWhiteSpace(limit)
            && (!int.TryParse(limit, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out pageSize)
                || pageSize < 1 || pageSize > options.MaxLimit))
        {
            parameters.Add("limit", $"'{QueryParameters.Shorten(limit)}' is not a page size; use a whole number from 1 to {options.MaxLimit} (default {options.DefaultLimit}).");
        }

        if (parameters.Problem() is { } invalid)
            return (null, invalid);

        HistoryCursor? after = null;
        if (!string.IsNullOrEmpty(cursor))
        {
            if (!HistoryCursor.TryDecode(cursor, out var position))
            {
                return (null, AgentLab.ServiceDefaults.Problems.Create(StatusCodes.Status400BadRequest, "invalid_cursor",
                    "The cursor is not valid",
                    "The cursor was not made by this API or was changed on the way. Pass next_cursor from the previous page " +
                    "exactly as received, or leave cursor out to start from the newest execution."));
            }
            after = position;
        }

        return (new HistoryFilter
        {
            Statuses = statuses,
            ExecutionType = type,
            Model = string.IsNullOrEmpty(model) ? null : model,
            From = start,
            To = end,
            Limit = pageSize,
            After = after,
        }, null);
    }
}
