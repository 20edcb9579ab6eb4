using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace AgentLab.LabService.Orchestration.Runtime;

/// <summary>Stable stop-reason codes of a run.</summary>
public static class StopCodes
{
    public const string Completed = "completed";
    public const string StepLimit = "step_limit";
    public const string BudgetExhausted = "budget_exhausted";
    public const string Cancelled = "cancelled";
    public const string NodeFailed = "node_failed";
    public const string InvalidVerdict = "invalid_verdict";

    /// <summary>A node routed to <see cref="Graph.Reject"/> (the validator's <c>fail</c> verdict).</summary>
    public const string Rejected = "rejected";
}

/// <summary>Which budget ran out.</summary>
public static class BudgetKinds
{
    public const string ModelCalls = "model_calls";
    public const string Tokens = "tokens";
    public const string WallTime = "wall_time";
}

/// <summary>Why a run stopped. <see cref="Budget"/> names the budget for <c>budget_exhausted</c>.</summary>
public sealed class StopReason
{
    public required string Code { get; init; }
    public required string Message { get; init; }
    public string? Node { get; init; }
    public string? Budget { get; init; }

    /// <summary>For <c>node_failed</c>: the failing node's error code (e.g. <c>model_unavailable</c>).</summary>
    public string? ErrorCode { get; init; }

    /// <summary>The exception behind a <c>node_failed</c>, so an API can map it like any other failure.</summary>
    [JsonIgnore] public Exception? Error { get; init; }

    [JsonIgnore] public bool IsSuccess => Code == StopCodes.Completed;
}

/// <summary>Metrics of one node attempt (durations in ms).</summary>
public sealed class NodeMetrics
{
    public double DurationMs { get; set; }
    public int ModelCalls { get; set; }
    public int PromptTokens { get; set; }
    public int CompletionTokens { get; set; }

    /// <summary>From the node's start to its first streamed token; null when it streamed none.</summary>
    public double? TimeToFirstTokenMs { get; set; }
    public int ToolCalls { get; set; }

    /// <summary>The version of the prompt file the node used, e.g. <c>analyzer.v1</c>.</summary>
    public string? PromptVersion { get; set; }
}

/// <summary>One node attempt as it ran (or was restored from an earlier attempt of the run).</summary>
public sealed class NodeRun
{
    public required string Name { get; set; }

    /// <summary><c>completed</c>, <c>failed</c> or <c>cancelled</c>.</summary>
    public required string Status { get; set; }
    public int Attempt { get; set; } = 1;
    public DateTimeOffset StartedAt { get; set; }
    public DateTimeOffset? EndedAt { get; set; }
    public double DurationMs { get; set; }
    public string? Output { get; set; }

    /// <summary>The route the node chose for conditional edges (e.g. a verdict); needed to resume a run.</summary>
    public string? Route { get; set; }
    public Dictionary<string, string>? Values { get; set; }
    public NodeMetrics Metrics { get; set; } = new();
    public NodeRunError? Error { get; set; }

    /// <summary>True when this node was not run again but restored from <c>previous_nodes</c>.</summary>
    public bool? Restored { get; set; }

    public const string CompletedStatus = "completed";
    public const string FailedStatus = "failed";
    public const string CancelledStatus = "cancelled";
}

public sealed class NodeRunError
{
    public required string Code { get; set; }
    public required string Message { get; set; }
}

/// <summary>An edge the run actually took.</summary>
public sealed record EdgeTaken(string From, string To, string? Label, int Step);

/// <summary>Totals over the whole run (durations in ms).</summary>
public sealed class RunMetrics
{
    public double TotalDurationMs { get; set; }
    public double? TimeToFirstTokenMs { get; set; }
    public int ModelCalls { get; set; }
    public int PromptTokens { get; set; }
    public int CompletionTokens { get; set; }
    public int ToolCalls { get; set; }
    public int Steps { get; set; }
}

/// <summary>The nodes in the order they ran, the edges taken and the iterations.</summary>
public sealed class GraphFlow
{
    public List<NodeRun> Nodes { get; set; } = [];
    public List<EdgeTaken> Edges { get; set; } = [];
    public int Iterations { get; set; }
}

/// <summary>What a run ended with.</summary>
public sealed class GraphRunResult
{
    public required string Graph { get; init; }
    public string? Output { get; init; }
    public required GraphFlow Flow { get; init; }
    public required RunMetrics Metrics { get; init; }
    public required StopReason StopReason { get; init; }
    [JsonIgnore] public required GraphState State { get; init; }

    /// <summary>Written by observers such as the lab graph's monitor.</summary>
    public JsonObject? Report { get; set; }
}
