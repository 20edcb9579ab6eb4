using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace AgentLab.Backend.Data.Retention;

/// <summary>
/// Merges the token events of finished executions. A stored <c>token</c> event carries <c>{"text": "..."}</c> (this is
/// the shape the event log uses for tokens; a writer that coalesces chunks may add <c>"tokens": n</c>). Each run of
/// consecutive token events of one node becomes the first event of the run, at its seq, with
/// <c>{"text": &lt;concatenated&gt;, "tokens": &lt;count&gt;, "through_seq": &lt;last seq of the run&gt;}</c>; the other
/// events of the run are deleted, so the log keeps its order but no longer has gap-free seqs: a reader treats a token
/// event with <c>through_seq</c> as covering <c>seq..through_seq</c>. Every other event keeps its seq and data.
/// </summary>
/// <remarks>
/// Runs are split by node because parallel nodes interleave their tokens: merging across nodes would mix their text.
/// A token event without a string <c>text</c> is left alone (and breaks the run), so nothing unknown is thrown away.
/// Idempotent twice over: an execution is marked (<c>events_compacted_at</c>) in the same statement, so a pass does not
/// scan it again, and compacting it again anyway finds only runs of one event, which are left as they are.
/// </remarks>
public static class EventCompaction
{
    /// <summary>What one compaction statement did.</summary>
    public readonly record struct Batch(int Executions, int EventsRemoved);

    // One statement, so a batch is all or nothing. Islands: among one node's text tokens, seq minus its rank is
    // constant exactly while the seqs are consecutive (any other event in between takes a seq and breaks it).
    private static readonly string CompactSql = $"""
        WITH target AS (
            SELECT id FROM executions
            WHERE {RetentionJob.FinishedFilter} AND completed_at < @cutoff AND events_compacted_at IS NULL
            ORDER BY completed_at
            LIMIT @batch
            FOR UPDATE SKIP LOCKED
        ),
        tokens AS (
            SELECT e.execution_id, e.seq, e.node, e.data,
                   e.seq - row_number() OVER (PARTITION BY e.execution_id, e.node ORDER BY e.seq) AS island
            FROM execution_events e
            WHERE e.execution_id IN (SELECT id FROM target)
              AND e.type = '{EventTypes.Token}' AND jsonb_typeof(e.data -> 'text') = 'string'
        ),
        runs AS (
            SELECT execution_id, node, island, min(seq) AS first_seq,
                   string_agg(data ->> 'text', '' ORDER BY seq) AS text,
                   sum(CASE WHEN jsonb_typeof(data -> 'tokens') = 'number' THEN (data ->> 'tokens')::numeric::bigint ELSE 1 END) AS tokens,
                   max(CASE WHEN jsonb_typeof(data -> 'through_seq') = 'number' THEN (data ->> 'through_seq')::numeric::bigint ELSE seq END) AS through_seq
            FROM tokens
            GROUP BY execution_id, node, island
            HAVING count(*) > 1
        ),
        merged AS (
            UPDATE execution_events e
            SET data = jsonb_build_object('text', r.text, 'tokens', r.tokens, 'through_seq', r.through_seq)
            FROM runs r
            WHERE e.execution_id = r.execution_id AND e.seq = r.first_seq
            RETURNING 1
        ),
        removed AS (
            DELETE FROM execution_events e
            USING tokens t
            JOIN runs r ON r.execution_id = t.execution_id AND r.node IS NOT DISTINCT FROM t.node AND r.island = t.island
            WHERE e.execution_id = t.execution_id AND e.seq = t.seq AND t.seq > r.first_seq
            RETURNING 1
        ),
        marked AS (
            UPDATE executions x SET events_compacted_at = @now
            FROM target t
            WHERE x.id = t.id
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM marked), (SELECT count(*) FROM removed), (SELECT count(*) FROM merged)
        """;

    /// <summary>
    /// Compacts up to <paramref name="batchSize"/> finished executions that completed before <paramref name="cutoff"/>
    /// and were not compacted yet, oldest first, and marks them compacted at <paramref name="now"/>.
    /// </summary>
    public static async Task<Batch> CompactBatchAsync(AgentLabDb db, DateTimeOffset cutoff, DateTimeOffset now, int batchSize,
        CancellationToken ct)
    {
        // The statement is retried whole on a transient failure; a batch that did commit is marked, so a retry takes
        // the next one.
        var strategy = db.Database.CreateExecutionStrategy();
        return await strategy.ExecuteAsync(async token =>
        {
            await db.Database.OpenConnectionAsync(token).ConfigureAwait(false);
            try
            {
                await using var command = db.Database.GetDbConnection().CreateCommand();
                command.CommandText = CompactSql;
                if (db.Database.GetCommandTimeout() is { } timeout)
                    command.CommandTimeout = timeout;
                command.Parameters.Add(new NpgsqlParameter("cutoff", cutoff));
                command.Parameters.Add(new NpgsqlParameter("now", now));
                command.Parameters.Add(new NpgsqlParameter("batch", batchSize));
                await using var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
                await reader.ReadAsync(token).ConfigureAwait(false);
                return new Batch((int)reader.GetInt64(0), (int)reader.GetInt64(1));
            }
            finally
            {
                await db.Database.CloseConnectionAsync().ConfigureAwait(false);
            }
        }, ct).ConfigureAwait(false);
    }
}
