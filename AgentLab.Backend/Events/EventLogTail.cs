using AgentLab.Backend.Data;
using Microsoft.EntityFrameworkCore;

namespace AgentLab.Backend.Events;

/// <summary>Where executions' stored event logs end: the hub's baseline for a new feed and its cheap poll.</summary>
internal static class EventLogTail
{
    /// <summary>
    /// The highest stored seq of each execution (0 when it has none), in one query: a backward index probe per id,
    /// so polling many watched executions costs one round trip, not one per execution.
    /// </summary>
    public static async Task<Dictionary<Guid, long>> ReadAsync(AgentLabDb db, IReadOnlyCollection<Guid> ids, CancellationToken ct)
    {
        var array = ids.ToArray();
        var rows = await db.Database.SqlQuery<TailRow>($"""
            SELECT i.id AS "ExecutionId",
                   COALESCE((SELECT e.seq FROM execution_events e WHERE e.execution_id = i.id ORDER BY e.seq DESC LIMIT 1), 0) AS "Seq"
            FROM unnest({array}) AS i(id)
            """).ToListAsync(ct).ConfigureAwait(false);
        return rows.ToDictionary(r => r.ExecutionId, r => r.Seq);
    }

    private sealed class TailRow
    {
        public Guid ExecutionId { get; set; }
        public long Seq { get; set; }
    }
}
