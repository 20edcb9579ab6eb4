using AgentLab.Backend.Data;
using AgentLab.Backend.Executions;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;
using NpgsqlTypes;

namespace AgentLab.Backend.Metrics;

/// <summary>
/// Counts, error rate, duration and time-to-first-token percentiles, token sums and tokens/s — totals and by type,
/// model and status — in one SQL statement with GROUPING SETS.
/// </summary>
/// <remarks>
/// <para>Why a rollup: at 1,000,000 executions on 2 cores, exact <c>percentile_cont</c> over the raw rows by type,
/// model and status took 5-8 s (sorting a million values per grouping); even counts and sums alone took ~0.35 s per
/// grouping. So finished executions are rolled up per UTC day (migration HistoryMetricsIndexes, kept current by
/// triggers) with log-spaced histograms for the percentiles, and a query reads the whole days of its window from
/// the rollup and only the rest from <c>executions</c>: the partial days at the window's ends (an index range on
/// <c>created_at</c>) and the unfinished executions (a small partial index, read index-only).</para>
/// <para>Percentiles follow percentile_cont — linear interpolation between the values at ranks floor(p·(n−1)) and the
/// next — with each of those two values estimated from the histogram: bin b counts and sums the values in
/// [2^(b/8), 2^((b+1)/8)) ms, and its values are taken as spread evenly around their mean, as widely as the bin
/// allows. A value alone in its bin is therefore exact, a cluster (runs that all timed out at 120 s) lands on its
/// mean, and no estimate is off by more than one bin (9 %); the history benchmark compares every percentile with
/// percentile_cont over 1M rows.</para>
/// <para>tokens_per_second is total completion tokens over total generation time (each completed row's
/// completion_tokens / tokens_per_second), i.e. the throughput a user saw — not the mean of per-row rates, which
/// would let a 3-token answer weigh as much as a 3,000-token one.</para>
/// </remarks>
public sealed class MetricsQuery(AgentLabDb db)
{
    // GROUPING(execution_type, model, status): a set bit means that column was rolled up.
    private const int ByTypeGrouping = 0b011, ByModelGrouping = 0b101, ByStatusGrouping = 0b110, TotalsGrouping = 0b111;

    /// <summary>The figures over every owner's executions (an admin's view).</summary>
    public Task<MetricsReport> ReadAsync(DateTimeOffset? from, DateTimeOffset? to, DateTimeOffset now, CancellationToken ct) =>
        ReadAsync(null, from, to, now, ct);

    /// <summary>The figures over <paramref name="owner"/>'s executions, or every owner's when it is null.</summary>
    public async Task<MetricsReport> ReadAsync(string? owner, DateTimeOffset? from, DateTimeOffset? to, DateTimeOffset now, CancellationToken ct)
    {
        var days = RollupDays(from, to);
        var strategy = db.Database.CreateExecutionStrategy();
        var rows = await strategy.ExecuteAsync(async token =>
        {
            await using var transaction = await db.Database.BeginTransactionAsync(token).ConfigureAwait(false);
            var connection = (NpgsqlConnection)db.Database.GetDbConnection();
            await using var batch = new NpgsqlBatch(connection, (NpgsqlTransaction)transaction.GetDbTransaction())
            {
                BatchCommands =
                {
                    // A high cost estimate switches JIT on, and compiling took longer than running (grouping 1M raw rows: 1.2 s with it, 0.8 s without).
                    new NpgsqlBatchCommand("SET LOCAL jit = off"),
                    new NpgsqlBatchCommand(owner is null ? AllOwnersSql : OneOwnerSql)
                    {
                        Parameters =
                        {
                            Timestamp("from", from),
                            Timestamp("to", to),
                            Timestamp("rollup_from", days.From),
                            Timestamp("rollup_to", days.To),
                            new NpgsqlParameter<bool>("use_rollup", days.Use),
                        },
                    },
                },
            };
            if (owner is not null)
                batch.BatchCommands[1].Parameters.Add(new NpgsqlParameter<string>("owner", owner));
            var result = new List<Row>();
            await using (var reader = await batch.ExecuteReaderAsync(token).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(token).ConfigureAwait(false))
                    result.Add(Row.Read(reader));
            }
            await transaction.CommitAsync(token).ConfigureAwait(false);
            return result;
        }, ct).ConfigureAwait(false);

        return ToReport(rows, from, to, now);
    }

    /// <summary>
    /// The whole UTC days inside [from, to), read from the rollup: [From, To), a null bound open. <c>Use</c> is false
    /// when no whole day fits, and then every row comes from <c>executions</c>.
    /// </summary>
    public static (bool Use, DateTimeOffset? From, DateTimeOffset? To) RollupDays(DateTimeOffset? from, DateTimeOffset? to)
    {
        DateTimeOffset? first = null, end = null;
        if (from is { } f)
        {
            var day = new DateTimeOffset(f.UtcDateTime.Date, TimeSpan.Zero);
            if (day < f)
            {
                if (day.UtcDateTime.Date == DateTime.MaxValue.Date)
                    return (false, null, null);
                day = day.AddDays(1);
            }
            first = day;
        }
        if (to is { } t)
            end = new DateTimeOffset(t.UtcDateTime.Date, TimeSpan.Zero);
        return first is null || end is null || first < end ? (true, first, end) : (false, null, null);
    }

    private static NpgsqlParameter Timestamp(string name, DateTimeOffset? value) =>
        new(name, NpgsqlDbType.TimestampTz) { Value = value is { } v ? v.ToUniversalTime() : DBNull.Value };

    private static MetricsReport ToReport(List<Row> rows, DateTimeOffset? from, DateTimeOffset? to, DateTimeOffset now) => new()
    {
        Window = new MetricsWindow { From = from, To = to },
        GeneratedAt = now,
        Totals = Fill(new GroupMetrics(), rows.Find(r => r.Grouping == TotalsGrouping)),
        ByType = [.. ExecutionKinds.ExecutionTypes.Select(type =>
            Fill(new TypeMetrics { ExecutionType = type }, rows.Find(r => r.Grouping == ByTypeGrouping && r.ExecutionType == type)))],
        ByModel = [.. rows.Where(r => r.Grouping == ByModelGrouping)
            .OrderByDescending(r => r.Executions).ThenBy(r => r.Model, StringComparer.Ordinal)
            .Select(r => Fill(new ModelMetrics { Model = r.Model }, r))],
        ByStatus = [.. ExecutionStatus.All.Select(status =>
            Fill(new StatusMetrics { Status = status }, rows.Find(r => r.Grouping == ByStatusGrouping && r.Status == status)))],
    };

    /// <summary>One result row's figures; a group without a row (nothing in the window) keeps its zeros and nulls.</summary>
    private static T Fill<T>(T group, Row? row) where T : GroupMetrics
    {
        if (row is null)
            return group;
        group.Count = row.Executions;
        group.Completed = row.Completed;
        group.Failed = row.Failed;
        group.Cancelled = row.Cancelled;
        group.ErrorRate = row.Finished > 0 ? (double)row.Failed / row.Finished : null;
        group.DurationMs = new Percentiles { P50 = Round(row.DurationP50), P95 = Round(row.DurationP95), P99 = Round(row.DurationP99) };
        group.TimeToFirstTokenMs = new Percentiles { P50 = Round(row.TtftP50), P95 = Round(row.TtftP95), P99 = Round(row.TtftP99) };
        group.PromptTokens = row.PromptTokens;
        group.CompletionTokens = row.CompletionTokens;
        group.TokensPerSecond = row.GenerationSeconds > 0 ? Math.Round(row.GenerationTokens / row.GenerationSeconds, 2) : null;
        return group;
    }

    // Estimates to 0.01 ms; more digits would claim a precision the histogram does not have.
    private static double? Round(double? value) => value is { } v ? Math.Round(v, 2) : null;

    private sealed record Row(int Grouping, string? ExecutionType, string? Model, string? Status, long Executions, long Completed,
        long Failed, long Cancelled, long Finished, long PromptTokens, long CompletionTokens, long GenerationTokens,
        double GenerationSeconds, double? DurationP50, double? DurationP95, double? DurationP99, double? TtftP50, double? TtftP95,
        double? TtftP99)
    {
        public static Row Read(NpgsqlDataReader r) => new(r.GetInt32(0), Text(r, 1), Text(r, 2), Text(r, 3), r.GetInt64(4),
            r.GetInt64(5), r.GetInt64(6), r.GetInt64(7), r.GetInt64(8), r.GetInt64(9), r.GetInt64(10), r.GetInt64(11),
            r.GetDouble(12), Number(r, 13), Number(r, 14), Number(r, 15), Number(r, 16), Number(r, 17), Number(r, 18));

        private static string? Text(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);
        private static double? Number(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetDouble(i);
    }

    // Two statements rather than "@owner IS NULL OR owner = @owner", so each one's plan is plainly its own: a user's
    // reads only its rollup rows (owner leads their keys) and its executions (owner-leading indexes of migration Ownership).
    private static readonly string AllOwnersSql = Statement("");
    private static readonly string OneOwnerSql = Statement("owner = @owner AND ");

    /// <summary>
    /// The statement, each read of <c>executions</c> and the rollup starting with <paramref name="owner"/>'s
    /// condition. <c>raw</c> is every execution of the window the rollup does not hold: all rows of the partial
    /// days at either end (or of the whole window when it holds no whole day), plus unfinished rows inside the whole
    /// days. A bound that is NULL makes its branch's condition NULL, which the planner folds to "no rows".
    /// Models are '' for "unknown" inside the query (as in the rollup's keys) and NULL again on the way out.
    /// </summary>
    private static string Statement(string owner) => $$"""
        WITH raw AS (
            SELECT execution_type, coalesce(model, '') AS model, status, duration_ms, time_to_first_token_ms,
                   prompt_tokens, completion_tokens, tokens_per_second
            FROM executions WHERE {{owner}}created_at >= @from AND created_at < @rollup_from
            UNION ALL
            SELECT execution_type, coalesce(model, ''), status, duration_ms, time_to_first_token_ms,
                   prompt_tokens, completion_tokens, tokens_per_second
            FROM executions WHERE {{owner}}created_at >= @rollup_to AND created_at < @to
            UNION ALL
            SELECT execution_type, coalesce(model, ''), status, duration_ms, time_to_first_token_ms,
                   prompt_tokens, completion_tokens, tokens_per_second
            FROM executions
            WHERE NOT @use_rollup AND {{owner}}created_at >= coalesce(@from, '-infinity') AND created_at < coalesce(@to, 'infinity')
            UNION ALL
            -- Unfinished rows have no figures yet: only their keys, an index-only scan of executions_active_created_idx.
            SELECT execution_type, coalesce(model, ''), status, NULL, NULL, NULL, NULL, NULL
            FROM executions
            WHERE @use_rollup AND {{owner}}status IN ('queued', 'running')
              AND created_at >= coalesce(@rollup_from, '-infinity') AND created_at < coalesce(@rollup_to, 'infinity')
        ),
        facts AS (
            SELECT execution_type, model, status, sum(executions)::bigint AS executions,
                   sum(prompt_tokens)::bigint AS prompt_tokens, sum(completion_tokens)::bigint AS completion_tokens,
                   sum(generation_tokens)::bigint AS generation_tokens, sum(generation_seconds) AS generation_seconds
            FROM execution_stats_daily
            WHERE @use_rollup AND {{owner}}day >= coalesce(@rollup_from, '-infinity') AND day < coalesce(@rollup_to, 'infinity')
            GROUP BY execution_type, model, status
            UNION ALL
            SELECT execution_type, model, status, count(*), coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0),
                   coalesce(sum(completion_tokens) FILTER (WHERE status = 'completed' AND tokens_per_second > 0 AND completion_tokens > 0), 0),
                   coalesce(sum(completion_tokens / tokens_per_second) FILTER (WHERE status = 'completed' AND tokens_per_second > 0 AND completion_tokens > 0), 0)
            FROM raw
            GROUP BY execution_type, model, status
        ),
        bins AS (
            -- Days collapse first (one pass over the rollup), so the grouping sets below work on a few thousand rows.
            SELECT execution_type, model, status, metric, bin, sum(executions)::bigint AS executions, sum(value_sum) AS value_sum
            FROM execution_stats_daily_bins
            WHERE @use_rollup AND {{owner}}day >= coalesce(@rollup_from, '-infinity') AND day < coalesce(@rollup_to, 'infinity')
            GROUP BY execution_type, model, status, metric, bin
            UNION ALL
            SELECT execution_type, model, status, m.metric, execution_stats_bin(m.value), count(*), sum(m.value)
            FROM raw CROSS JOIN LATERAL (VALUES (1::smallint, duration_ms), (2::smallint, time_to_first_token_ms)) m (metric, value)
            WHERE m.value IS NOT NULL
            GROUP BY 1, 2, 3, 4, 5
        ),
        groups AS (
            SELECT GROUPING(execution_type, model, status) AS grouping, execution_type, model, status,
                   coalesce(sum(executions), 0)::bigint AS executions,
                   coalesce(sum(executions) FILTER (WHERE status = 'completed'), 0)::bigint AS completed,
                   coalesce(sum(executions) FILTER (WHERE status IN ('failed', 'timed_out')), 0)::bigint AS failed,
                   coalesce(sum(executions) FILTER (WHERE status = 'cancelled'), 0)::bigint AS cancelled,
                   coalesce(sum(executions) FILTER (WHERE status IN ('completed', 'failed', 'timed_out', 'cancelled')), 0)::bigint AS finished,
                   coalesce(sum(prompt_tokens), 0)::bigint AS prompt_tokens,
                   coalesce(sum(completion_tokens), 0)::bigint AS completion_tokens,
                   coalesce(sum(generation_tokens), 0)::bigint AS generation_tokens,
                   coalesce(sum(generation_seconds), 0)::float8 AS generation_seconds
            FROM facts
            GROUP BY GROUPING SETS ((), (execution_type), (model), (status))
        ),
        histograms AS (
            SELECT GROUPING(execution_type, model, status) AS grouping, execution_type, model, status, metric, bin,
                   sum(executions)::float8 AS n, sum(value_sum) AS value_sum
            FROM bins
            GROUP BY GROUPING SETS ((metric, bin), (execution_type, metric, bin), (model, metric, bin), (status, metric, bin))
        ),
        ranked AS (
            SELECT h.*, sum(n) OVER below_and_here - n AS below,
                   sum(n) OVER (PARTITION BY grouping, execution_type, model, status, metric) AS total
            FROM histograms h
            WINDOW below_and_here AS (PARTITION BY grouping, execution_type, model, status, metric ORDER BY bin)
        ),
        order_statistics AS (
            -- The values at rank floor(p·(n−1)) and the next, each found in its bin. The bin's values are taken as
            -- spread evenly around their mean, as widely as the bin allows: a value alone in its bin is its mean.
            SELECT grouping, execution_type, model, status, metric, q.p, s.side, q.p * (total - 1) AS rank,
                   a.mean + a.half * (2 * (t.k - below + 0.5) / n - 1) AS value
            FROM ranked
            CROSS JOIN (VALUES (0.5::float8), (0.95), (0.99)) q (p)
            CROSS JOIN (VALUES (0), (1)) s (side)
            CROSS JOIN LATERAL (SELECT least(floor(q.p * (total - 1)) + s.side, total - 1) AS k) t
            CROSS JOIN LATERAL (SELECT value_sum / n AS mean,
                                       greatest(0, least(value_sum / n - power(2::float8, bin / 8::float8),
                                                         power(2::float8, (bin + 1) / 8::float8) - value_sum / n)) AS half) a
            WHERE below <= t.k AND t.k < below + n
        ),
        percentiles AS (
            -- percentile_cont's definition: linear interpolation between the two order statistics around the rank.
            SELECT grouping, execution_type, model, status, metric, p,
                   max(value) FILTER (WHERE side = 0)
                       + (max(rank) - floor(max(rank))) * (max(value) FILTER (WHERE side = 1) - max(value) FILTER (WHERE side = 0)) AS value
            FROM order_statistics
            GROUP BY grouping, execution_type, model, status, metric, p
        )
        SELECT g.grouping, g.execution_type, nullif(g.model, ''), g.status, g.executions, g.completed, g.failed, g.cancelled,
               g.finished, g.prompt_tokens, g.completion_tokens, g.generation_tokens, g.generation_seconds,
               max(p.value) FILTER (WHERE p.metric = 1 AND p.p = 0.5),
               max(p.value) FILTER (WHERE p.metric = 1 AND p.p = 0.95),
               max(p.value) FILTER (WHERE p.metric = 1 AND p.p = 0.99),
               max(p.value) FILTER (WHERE p.metric = 2 AND p.p = 0.5),
               max(p.value) FILTER (WHERE p.metric = 2 AND p.p = 0.95),
               max(p.value) FILTER (WHERE p.metric = 2 AND p.p = 0.99)
        FROM groups g
        LEFT JOIN percentiles p ON p.grouping = g.grouping AND p.execution_type IS NOT DISTINCT FROM g.execution_type
            AND p.model IS NOT DISTINCT FROM g.model AND p.status IS NOT DISTINCT FROM g.status
        GROUP BY g.grouping, g.execution_type, g.model, g.status, g.executions, g.completed, g.failed, g.cancelled, g.finished,
                 g.prompt_tokens, g.completion_tokens, g.generation_tokens, g.generation_seconds
        """;
}
