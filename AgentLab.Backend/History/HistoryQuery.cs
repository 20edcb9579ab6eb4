using AgentLab.Backend.Data;
using AgentLab.Backend.Executions;
using Microsoft.EntityFrameworkCore;

namespace AgentLab.Backend.History;

/// <summary>
/// One page of executions, newest first by <c>(created_at DESC, id DESC)</c>, keyset-paged: the next page starts
/// strictly after the last row's <c>(created_at, id)</c>, so pages neither repeat nor skip rows while new ones arrive,
/// and a page deep in the history costs what the first one does.
/// </summary>
/// <remarks>
/// Each filter path is an index range scan (with an owner, on migration Ownership's owner-leading copies of them) that stops after <c>limit + 1</c> rows, on InitialSchema's indexes
/// <c>(created_at DESC, id DESC)</c> or <c>(status | execution_type | model, created_at DESC, id DESC)</c>; the
/// <c>(created_at, id) &lt; (…)</c> row comparison is an index condition. Several statuses are read as one such scan per
/// status, merged (UNION ALL, then the top <c>limit + 1</c>): a single <c>status IN (…)</c> scan cannot return rows
/// in <c>created_at</c> order, and PostgreSQL would then walk the whole time index filtering rows, which for rare
/// statuses means most of the table.
/// </remarks>
public sealed class HistoryQuery(AgentLabDb db)
{
    public async Task<HistoryPage> ReadAsync(HistoryFilter filter, CancellationToken ct)
    {
        var rows = await Build(filter)
            .Select(e => new Row(e.Id, e.Owner, e.Status, e.ExecutionType, e.Model, e.ModelServer, e.CreatedAt, e.StartedAt, e.CompletedAt,
                e.DurationMs, e.TimeToFirstTokenMs, e.PromptTokens, e.CompletionTokens, e.TokensPerSecond, e.Attempt,
                e.ErrorCode, e.ErrorMessage))
            .ToListAsync(ct).ConfigureAwait(false);

        // One row more than asked says whether another page exists, without a COUNT.
        var more = rows.Count > filter.Limit;
        if (more)
            rows.RemoveAt(rows.Count - 1);

        return new HistoryPage
        {
            Items = rows.ConvertAll(ToSummary),
            NextCursor = more ? new HistoryCursor(rows[^1].CreatedAt, rows[^1].Id).Encode() : null,
            Limit = filter.Limit,
        };
    }

    /// <summary>The query for a page (<c>limit + 1</c> rows), exposed so tests and the benchmark can EXPLAIN it.</summary>
    public IQueryable<ExecutionRecord> Build(HistoryFilter filter)
    {
        var take = filter.Limit + 1;
        if (filter.Statuses.Count <= 1)
            return Newest(Filtered(filter, filter.Statuses.Count == 1 ? filter.Statuses[0] : null), take);

        var merged = filter.Statuses.Select(s => Newest(Filtered(filter, s), take)).Aggregate(Queryable.Concat);
        return Newest(merged, take);
    }

    private IQueryable<ExecutionRecord> Filtered(HistoryFilter filter, string? status)
    {
        var query = db.Executions.AsNoTracking();
        // The owner leads the Ownership migration's copies of those four indexes, so a user's page is the same range scan.
        if (filter.Owner is { } owner)
            query = query.Where(e => e.Owner == owner);
        if (status is not null)
            query = query.Where(e => e.Status == status);
        if (filter.ExecutionType is { } type)
            query = query.Where(e => e.ExecutionType == type);
        if (filter.Model is { } model)
            query = query.Where(e => e.Model == model);
        if (filter.From is { } from)
            query = query.Where(e => e.CreatedAt >= from);
        if (filter.To is { } to)
            query = query.Where(e => e.CreatedAt < to);
        if (filter.After is { } after)
        {
            var (at, id) = (after.CreatedAt, after.Id);
            // Implied by the row comparison, but the planner prices an owner-leading index by its plain range conditions:
            // without this bound it takes a deep page as reading the owner's whole range, and for a busy owner may
            // prefer walking executions_created_idx, filtering every owner's rows.
            if (filter.Owner is not null)
                query = query.Where(e => e.CreatedAt <= at);
            // (created_at, id) < (@at, @id): a row comparison PostgreSQL uses as one index condition.
            query = query.Where(e => EF.Functions.LessThan(ValueTuple.Create(e.CreatedAt, e.Id), ValueTuple.Create(at, id)));
        }
        return query;
    }

    private static IQueryable<ExecutionRecord> Newest(IQueryable<ExecutionRecord> query, int take) =>
        query.OrderByDescending(e => e.CreatedAt).ThenByDescending(e => e.Id).Take(take);

    private static ExecutionSummary ToSummary(Row row) => new()
    {
        ExecutionId = row.Id,
        Owner = row.Owner,
        Status = row.Status,
        ExecutionType = row.ExecutionType,
        Model = row.Model,
        ModelServer = row.ModelServer,
        CreatedAt = row.CreatedAt,
        StartedAt = row.StartedAt,
        CompletedAt = row.CompletedAt,
        DurationMs = row.DurationMs,
        TimeToFirstTokenMs = row.TimeToFirstTokenMs,
        PromptTokens = row.PromptTokens,
        CompletionTokens = row.CompletionTokens,
        TokensPerSecond = row.TokensPerSecond,
        Attempt = row.Attempt,
        Error = row.ErrorCode is null && row.ErrorMessage is null
            ? null
            : new ExecutionError { Code = row.ErrorCode ?? "unknown", Message = row.ErrorMessage ?? row.ErrorCode ?? "" },
        Links = new ExecutionLinks { Self = $"/api/v1/executions/{row.Id}" },
    };

    // Only the summary's columns: the prompt (request), output and flow can be large and are never listed.
    private sealed record Row(Guid Id, string Owner, string Status, string ExecutionType, string? Model, string? ModelServer,
        DateTimeOffset CreatedAt, DateTimeOffset? StartedAt, DateTimeOffset? CompletedAt, double? DurationMs,
        double? TimeToFirstTokenMs, int? PromptTokens, int? CompletionTokens, double? TokensPerSecond, int Attempt,
        string? ErrorCode, string? ErrorMessage);
}
