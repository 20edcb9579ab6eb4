using System.ComponentModel.DataAnnotations;

namespace AgentLab.Backend.Events;

/// <summary>How a run's events are written to the event log (section <c>Events</c>).</summary>
public sealed class EventOptions
{
    public const string Section = "Events";

    /// <summary>
    /// Tokens of one node are stored as one chunk event at most this long after the first of them arrived (the first
    /// token of a node is stored alone at once: time to first token matters to a person watching).
    /// </summary>
    [Range(1, 60_000)]
    public int TokenChunkMilliseconds { get; set; } = 50;

    /// <summary>A chunk is stored as soon as it holds this many tokens.</summary>
    [Range(1, 100_000)]
    public int TokenChunkMaxTokens { get; set; } = 64;

    /// <summary>
    /// Events (tokens included) a run may have waiting for the database before its stream reader waits too: the
    /// backpressure that keeps a slow database from growing memory without bound.
    /// </summary>
    [Range(16, 1_000_000)]
    public int JournalCapacity { get; set; } = 4096;

    /// <summary>Most events written by one INSERT (a backlog is written in several).</summary>
    [Range(1, 10_000)]
    public int MaxBatchEvents { get; set; } = 500;
}
