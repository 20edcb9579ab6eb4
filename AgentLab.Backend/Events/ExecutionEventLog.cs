using System.Text.Json;
using AgentLab.Backend.Data;
using Microsoft.EntityFrameworkCore;

namespace AgentLab.Backend.Events;

/// <summary>Reads an execution's stored event log (<c>execution_events</c>), the source of truth for every replay.</summary>
public sealed class ExecutionEventLog(AgentLabDb db)
{
    /// <summary>
    /// Up to <paramref name="limit"/> events after <paramref name="afterSeq"/>, in seq order. A compacted token run
    /// that covers <paramref name="afterSeq"/> (seq at or before it, <c>through_seq</c> after it) is included whole:
    /// its chunks can no longer be told apart.
    /// </summary>
    public async Task<IReadOnlyList<ExecutionEvent>> ReadAfterAsync(Guid id, long afterSeq, int limit, CancellationToken ct)
    {
        var rows = await db.Events
            .FromSql($"""
                SELECT execution_id, seq, type, node, data, ts FROM execution_events
                WHERE execution_id = {id} AND (seq > {afterSeq}
                    OR (seq <= {afterSeq} AND type = 'token' AND jsonb_typeof(data -> 'through_seq') = 'number'
                        AND (data ->> 'through_seq')::numeric::bigint > {afterSeq}))
                ORDER BY seq
                LIMIT {limit}
                """)
            .AsNoTracking()
            .ToListAsync(ct).ConfigureAwait(false);
        return rows.Select(ToEvent).ToList();
    }

    public static ExecutionEvent ToEvent(ExecutionEventRecord r)
    {
        using var data = JsonDocument.Parse(r.Data);
        return new ExecutionEvent(r.ExecutionId, r.Seq, r.Type, r.Node, data.RootElement.Clone(), r.Ts);
    }
}
