namespace AgentLab.Backend.Graphs;

/// <summary>A registered custom graph (table <c>graphs</c>).</summary>
public sealed class GraphRecord
{
    /// <summary>The token subject that registered it. Empty for rows older than auth.</summary>
    public string Owner { get; set; } = "";

    /// <summary>The graph's name, as in its definition (<c>^[a-z][a-z0-9_-]{0,39}$</c>).</summary>
    public required string Name { get; set; }

    /// <summary>The definition (jsonb), validated by LabService before it was stored.</summary>
    public required string Definition { get; set; }

    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    /// <summary>1 when registered, +1 on each replacement with a different definition.</summary>
    public int Version { get; set; }
}
