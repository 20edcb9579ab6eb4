using System.ComponentModel.DataAnnotations;

namespace AgentLab.Backend.Data.Retention;

/// <summary>
/// How long executions are kept and when their events are compacted (section <c>Retention</c>). Only finished
/// executions are ever deleted or compacted; a queued or running one stays whatever its age.
/// </summary>
public sealed class RetentionOptions
{
    public const string Section = "Retention";

    /// <summary>Runs the background job. <see cref="RetentionJob.RunOnceAsync"/> works either way.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Finished executions created more than this many days ago are deleted.</summary>
    [Range(1, 36_500)] public int MaxAgeDays { get; set; } = 30;

    /// <summary>Beyond this many executions (all statuses counted), the oldest finished ones are deleted.</summary>
    [Range(1, int.MaxValue)] public int MaxExecutions { get; set; } = 100_000;

    /// <summary>Executions per DELETE (their node states, events and logs go with them) and per compaction statement.</summary>
    [Range(1, 10_000)] public int BatchSize { get; set; } = 500;

    /// <summary>Seconds between two passes; the first runs once the schema is migrated.</summary>
    [Range(1, 86_400)] public int IntervalSeconds { get; set; } = 300;

    /// <summary>Pause after each batch, so a large cleanup leaves the database room for the requests being served.</summary>
    [Range(0, 60_000)] public int PauseBetweenBatchesMilliseconds { get; set; } = 50;

    /// <summary>Token events of an execution are merged this many minutes after it finished.</summary>
    [Range(0, 525_600)] public int CompactEventsAfterMinutes { get; set; } = 60;

    /// <summary>
    /// Bound of one retention statement. Longer than <c>Database:CommandTimeoutSeconds</c> (meant for requests): a
    /// batch deletes the events and logs of its executions too.
    /// </summary>
    [Range(1, 3600)] public int CommandTimeoutSeconds { get; set; } = 30;
}
