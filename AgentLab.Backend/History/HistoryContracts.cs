using AgentLab.Backend.Executions;

namespace AgentLab.Backend.History;

/// <summary>One page of <c>GET /api/v1/history</c>, newest first.</summary>
public sealed class HistoryPage
{
    public required List<ExecutionSummary> Items { get; init; }

    /// <summary>Pass as <c>cursor</c> for the next (older) page; null on the last page.</summary>
    public required string? NextCursor { get; init; }
    public required int Limit { get; init; }
}

/// <summary>An execution as the history lists it: status, timings and token counts, never the prompt or output.</summary>
public sealed class ExecutionSummary
{
    public required Guid ExecutionId { get; init; }

    /// <summary>The token subject that submitted it (empty for executions older than authentication).</summary>
    public required string Owner { get; init; }
    public required string Status { get; init; }
    public required string ExecutionType { get; init; }
    public string? Model { get; init; }
    public string? ModelServer { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? CompletedAt { get; init; }
    public double? DurationMs { get; init; }
    public double? TimeToFirstTokenMs { get; init; }
    public int? PromptTokens { get; init; }
    public int? CompletionTokens { get; init; }
    public double? TokensPerSecond { get; init; }
    public required int Attempt { get; init; }

    /// <summary>Set when the execution failed, timed out or was cancelled with a reason; null otherwise.</summary>
    public ExecutionError? Error { get; init; }
    public required ExecutionLinks Links { get; init; }
}

public sealed class ExecutionLinks
{
    /// <summary>The execution in full: <c>/api/v1/executions/{id}</c>.</summary>
    public required string Self { get; init; }
}
