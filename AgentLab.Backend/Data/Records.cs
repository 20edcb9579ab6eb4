namespace AgentLab.Backend.Data;

/// <summary>One execution: what was asked, where it stands, what came out, and who holds it (table <c>executions</c>).</summary>
public sealed class ExecutionRecord
{
    /// <summary>UUIDv7, so new rows append to the primary key's index and ids sort by creation time.</summary>
    public Guid Id { get; set; }

    /// <summary>The token subject that submitted it; only it (and an admin) can see it. Empty for rows older than auth.</summary>
    public string Owner { get; set; } = "";

    /// <summary><c>simple</c> or <c>orchestrator</c>.</summary>
    public required string ExecutionType { get; set; }

    /// <summary><c>sync</c> or <c>async</c>: how it was submitted.</summary>
    public required string Mode { get; set; }

    /// <summary>The model as asked for (alias or tag); replaced by the resolved tag (<c>mistral:7b</c>) once it ran.</summary>
    public string? Model { get; set; }

    /// <summary><c>ollama</c> or <c>simulator</c>, once known.</summary>
    public string? ModelServer { get; set; }

    /// <summary>See <see cref="ExecutionStatus"/>.</summary>
    public required string Status { get; set; }

    /// <summary>The validated request (jsonb), enough to run it again after a crash.</summary>
    public required string Request { get; set; }

    /// <summary>SHA-256 (hex) of the request as submitted: an <c>Idempotency-Key</c> reused with another body is refused.</summary>
    public required string RequestHash { get; set; }

    public string? IdempotencyKey { get; set; }

    public string? Output { get; set; }
    public string? ErrorCode { get; set; }
    public string? ErrorMessage { get; set; }

    /// <summary>The flow's edges and iteration count (jsonb); the nodes live in <c>node_states</c>.</summary>
    public string? Flow { get; set; }

    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? StartedAt { get; set; }
    public DateTimeOffset? CompletedAt { get; set; }

    public double? DurationMs { get; set; }
    public double? TimeToFirstTokenMs { get; set; }
    public double? LoadDurationMs { get; set; }
    public int? PromptTokens { get; set; }
    public int? CompletionTokens { get; set; }
    public double? TokensPerSecond { get; set; }
    public int ModelCalls { get; set; }

    /// <summary>How many times a worker has started it (1 on the first run; a recovered run counts again).</summary>
    public int Attempt { get; set; }

    /// <summary>The Backend replica that holds it while queued or running; null once finished.</summary>
    public string? LeaseOwner { get; set; }

    /// <summary>When the holder's claim lapses unless renewed; a sweeper takes over rows past this time.</summary>
    public DateTimeOffset? LeaseExpiresAt { get; set; }

    /// <summary>
    /// The W3C traceparent of the request that submitted it, so a background run (even on another replica, after a
    /// crash) continues the same trace: one trace per execution.
    /// </summary>
    public string? TraceParent { get; set; }

    /// <summary>When the retention job merged its token events (<c>EventCompaction</c>); null until then.</summary>
    public DateTimeOffset? EventsCompactedAt { get; set; }
}

/// <summary>One node's run within an execution (table <c>node_states</c>), in the order the nodes started.</summary>
public sealed class NodeStateRecord
{
    public Guid ExecutionId { get; set; }

    /// <summary>0-based position in the flow.</summary>
    public int Position { get; set; }

    public required string Node { get; set; }
    public required string Status { get; set; }
    public int Attempt { get; set; }
    public DateTimeOffset? StartedAt { get; set; }
    public DateTimeOffset? EndedAt { get; set; }
    public double? DurationMs { get; set; }

    /// <summary>What the node was given (jsonb), so a resumed run can continue after it.</summary>
    public string? Input { get; set; }
    public string? Output { get; set; }

    /// <summary>The node's model metrics (jsonb, LabService's <c>metrics</c> object).</summary>
    public string? Metrics { get; set; }

    /// <summary>An orchestrator node's run as LabService sent it (jsonb: route, values, metrics), sent back to resume.</summary>
    public string? Run { get; set; }
    public string? ErrorCode { get; set; }
    public string? ErrorMessage { get; set; }
}

/// <summary>One event of an execution's ordered log (table <c>execution_events</c>, key <c>(execution_id, seq)</c>).</summary>
public sealed class ExecutionEventRecord
{
    public Guid ExecutionId { get; set; }

    /// <summary>Gap-free per execution, from 1.</summary>
    public long Seq { get; set; }

    public required string Type { get; set; }
    public string? Node { get; set; }

    /// <summary>The event's payload (jsonb object).</summary>
    public required string Data { get; set; }
    public DateTimeOffset Ts { get; set; }
}

/// <summary>A log line that belongs to an execution (table <c>execution_logs</c>), for reading it back with the run.</summary>
public sealed class ExecutionLogRecord
{
    public long Id { get; set; }
    public Guid ExecutionId { get; set; }
    public DateTimeOffset Ts { get; set; }
    public required string Level { get; set; }
    public string? Node { get; set; }
    public required string Message { get; set; }
}

/// <summary>
/// The execution state machine: <c>queued → running → completed | failed | cancelled | timed_out</c> (a queued
/// execution can also be cancelled, or failed when it cannot start). Every move is a conditional update in
/// <see cref="ExecutionStore"/>, so of two writers only one can win.
/// </summary>
public static class ExecutionStatus
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";
    public const string TimedOut = "timed_out";

    public static readonly string[] All = [Queued, Running, Completed, Failed, Cancelled, TimedOut];
    public static readonly string[] Active = [Queued, Running];
    public static readonly string[] Terminal = [Completed, Failed, Cancelled, TimedOut];

    public static bool IsTerminal(string status) => Array.IndexOf(Terminal, status) >= 0;
}
