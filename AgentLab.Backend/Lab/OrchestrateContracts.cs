using System.Text.Json;

namespace AgentLab.Backend.Lab;

/// <summary>LabService <c>POST /orchestrate/</c> body.</summary>
public sealed class OrchestrateRequest
{
    public required string Prompt { get; init; }
    public string? Model { get; init; }
    public List<string>? Agents { get; init; }
    public List<string>? Tools { get; init; }
    public OrchestrateParameters? Parameters { get; init; }

    /// <summary>
    /// The node runs an earlier attempt completed (LabService's NodeRun JSON, as it sent them): restored, not run again.
    /// Kept as raw JSON so the Backend sends back exactly what it was given (route, values, metrics).
    /// </summary>
    public List<JsonElement>? PreviousNodes { get; init; }

    /// <summary>A custom graph definition (as registered), run instead of the lab graph.</summary>
    public JsonElement? Graph { get; init; }
}

public sealed class OrchestrateParameters
{
    public double? Temperature { get; init; }
    public int? MaxTokens { get; init; }
    public int? NumCtx { get; init; }
    public long? Seed { get; init; }
    public double? TopP { get; init; }

    /// <summary>The run's wall-time budget.</summary>
    public double? TimeoutSeconds { get; init; }
}

/// <summary>
/// One NDJSON event of <c>POST /orchestrate/</c>, flat as on the wire: <c>node_started</c>, <c>token</c>,
/// <c>node_completed</c> (<see cref="Run"/>), <c>node_failed</c>, <c>log</c>, then <c>completed</c>
/// (<see cref="Data"/>) or <c>error</c> (<see cref="Error"/>, <see cref="Data"/>).
/// </summary>
public sealed class OrchestrateEvent
{
    public long Seq { get; init; }
    public string Type { get; init; } = "";
    public string? Node { get; init; }
    public string? Text { get; init; }
    public string? Level { get; init; }
    public string? Message { get; init; }
    public string? Code { get; init; }

    /// <summary>The node's attempt (<c>node_started</c>, <c>node_failed</c>).</summary>
    public int? Attempt { get; init; }

    /// <summary>The graph step a <c>node_started</c> belongs to.</summary>
    public int? Step { get; init; }

    /// <summary>Whether a <c>node_failed</c> node is tried again.</summary>
    public bool? WillRetry { get; init; }

    /// <summary>The node run of a <c>node_completed</c>, as LabService sent it.</summary>
    public JsonElement? Run { get; init; }
    public OrchestrateResult? Data { get; init; }
    public OrchestrateEventError? Error { get; init; }

    public const string NodeStarted = "node_started";
    public const string Token = "token";
    public const string NodeFailed = "node_failed";
    public const string Log = "log";
    public const string NodeCompleted = "node_completed";
    public const string Completed = "completed";
    public const string ErrorType = "error";
}

public sealed class OrchestrateEventError
{
    public string? Code { get; init; }
    public string? Message { get; init; }
    public int? Status { get; init; }
}

/// <summary>LabService's orchestration answer (the <c>completed</c> event's data).</summary>
public sealed class OrchestrateResult
{
    public string? Output { get; init; }
    public string? Model { get; init; }
    public string? ModelServer { get; init; }
    public LabFlow? Flow { get; init; }
    public LabRunMetrics? Metrics { get; init; }
    public LabStopReason? StopReason { get; init; }
}

public sealed class LabFlow
{
    /// <summary>The node runs in the order they ran, as LabService sent them.</summary>
    public List<JsonElement> Nodes { get; init; } = [];
    public List<LabEdge> Edges { get; init; } = [];
    public int Iterations { get; init; }
}

public sealed class LabEdge
{
    public string From { get; init; } = "";
    public string To { get; init; } = "";
    public string? Label { get; init; }
    public int Step { get; init; }
}

public sealed class LabRunMetrics
{
    public double TotalDurationMs { get; init; }
    public double? TimeToFirstTokenMs { get; init; }
    public int ModelCalls { get; init; }
    public int PromptTokens { get; init; }
    public int CompletionTokens { get; init; }
    public int ToolCalls { get; init; }
    public int Steps { get; init; }
}

public sealed class LabStopReason
{
    public string Code { get; init; } = "";
    public string? Message { get; init; }
    public string? Node { get; init; }
    public string? Budget { get; init; }
    public string? ErrorCode { get; init; }
}

/// <summary>The members of a LabService NodeRun the Backend reads (the whole run is kept as JSON).</summary>
public sealed class LabNodeRun
{
    public string Name { get; init; } = "";
    public string Status { get; init; } = "";
    public int Attempt { get; init; } = 1;
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? EndedAt { get; init; }
    public double? DurationMs { get; init; }
    public string? Output { get; init; }
    public JsonElement? Metrics { get; init; }
    public OrchestrateEventError? Error { get; init; }
    public bool? Restored { get; init; }
}
