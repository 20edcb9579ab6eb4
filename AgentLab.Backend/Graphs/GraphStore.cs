using AgentLab.Backend.Data;
using Microsoft.EntityFrameworkCore;

namespace AgentLab.Backend.Graphs;

/// <summary>How a registration ended.</summary>
public enum GraphWriteOutcome
{
    /// <summary>A new graph (version 1).</summary>
    Created,
    /// <summary>An existing graph replaced by a different definition (version + 1).</summary>
    Replaced,
    /// <summary>The same definition was already registered under this name: nothing changed.</summary>
    Unchanged,
    /// <summary>Another definition holds the name and replacing was not asked for.</summary>
    Conflict,
}

/// <summary>
/// The <c>graphs</c> table, keyed by (owner, name): each subject has its own names. Every write is one statement keyed so, so EF's retrying strategy may repeat it
/// safely: registering the same definition again changes nothing (no version bump), whoever's attempt it was.
/// </summary>
public sealed class GraphStore(AgentLabDb db, TimeProvider time)
{
    // A graph deleted between our insert and our read is registered on the next round; a few rounds are plenty.
    private const int MaxRounds = 3;

    public async Task<(GraphWriteOutcome Outcome, GraphRecord Record)> SaveAsync(string owner, string name, string definition, bool replace,
        CancellationToken ct)
    {
        for (var round = 1; ; round++)
        {
            var now = time.GetUtcNow();
            var written = replace
                ? await db.Graphs.FromSql($"""
                    INSERT INTO graphs (owner, name, definition, created_at, updated_at, version)
                    VALUES ({owner}, {name}, {definition}::jsonb, {now}, {now}, 1)
                    ON CONFLICT (owner, name) DO UPDATE
                        SET definition = EXCLUDED.definition, updated_at = EXCLUDED.updated_at, version = graphs.version + 1
                        WHERE graphs.definition IS DISTINCT FROM EXCLUDED.definition
                    RETURNING *
                    """).AsNoTracking().ToListAsync(ct)
                : await db.Graphs.FromSql($"""
                    INSERT INTO graphs (owner, name, definition, created_at, updated_at, version)
                    VALUES ({owner}, {name}, {definition}::jsonb, {now}, {now}, 1)
                    ON CONFLICT (owner, name) DO NOTHING
                    RETURNING *
                    """).AsNoTracking().ToListAsync(ct);
            if (written is [var record])
                return (record.Version == 1 ? GraphWriteOutcome.Created : GraphWriteOutcome.Replaced, record);

            // Nothing written: the name is taken, by this very definition (jsonb equality ignores layout) or another.
            var same = await db.Graphs.FromSql($"SELECT * FROM graphs WHERE owner = {owner} AND name = {name} AND definition = {definition}::jsonb")
                .AsNoTracking().ToListAsync(ct);
            if (same is [var unchanged])
                return (GraphWriteOutcome.Unchanged, unchanged);
            if (await FindAsync(owner, name, ct) is { } other)
                return (GraphWriteOutcome.Conflict, other);
            if (round == MaxRounds)
                throw new InvalidOperationException($"Graph '{name}' was deleted and re-registered concurrently {MaxRounds} times.");
        }
    }

    /// <summary><paramref name="owner"/>'s graph called <paramref name="name"/>; null when that owner has none.</summary>
    public Task<GraphRecord?> FindAsync(string owner, string name, CancellationToken ct) =>
        db.Graphs.AsNoTracking().FirstOrDefaultAsync(g => g.Owner == owner && g.Name == name, ct);

    /// <summary><paramref name="owner"/>'s graphs by name, or every owner's (by name, then owner) when it is null.</summary>
    public Task<List<GraphSummary>> ListAsync(string? owner, CancellationToken ct) =>
        // Description and node count come out of the jsonb, so listing does not ship every definition over the wire.
        db.Database.SqlQuery<GraphSummary>($"""
            SELECT owner AS "Owner", name AS "Name", definition->>'description' AS "Description",
                   COALESCE(jsonb_array_length(definition->'nodes'), 0) AS "Nodes",
                   version AS "Version", created_at AS "CreatedAt", updated_at AS "UpdatedAt"
            FROM graphs WHERE {owner}::text IS NULL OR owner = {owner} ORDER BY name, owner
            """).ToListAsync(ct);

    public async Task<bool> DeleteAsync(string owner, string name, CancellationToken ct) =>
        await db.Graphs.Where(g => g.Owner == owner && g.Name == name).ExecuteDeleteAsync(ct) > 0;
}
