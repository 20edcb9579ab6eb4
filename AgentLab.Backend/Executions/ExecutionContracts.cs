namespace AgentLab.Backend.Executions;

/// <summary>The body of <c>POST /api/v1/execute</c> (snake_case on the wire).</summary>
public sealed class ExecutionRequest
{
    /// <summary>The task for the model. Required, non-blank.</summary>
    public string? Prompt { get; set; }

    /// <summary>Alias (<c>mistral7b</c>) or Ollama tag (<c>mistral:7b</c>); LabService applies its default when absent.</summary>
    public string? Model { get; set; }

    /// <summary><c>simple</c> (default) or <c>orchestrator</c>.</summary>
    public string? ExecutionType { get; set; }

    /// <summary>Workers the orchestrator may use (orchestrator only).</summary>
    public List<string>? Agents { get; set; }

    /// <summary>Tool names the executor may call (orchestrator only).</summary>
    public List<string>? Tools { get; set; }

    /// <summary>A custom graph registered with <c>POST /api/v1/graphs</c>, run instead of the lab graph (orchestrator only).</summary>
    public string? Graph { get; set; }

    public ExecutionParameters? Parameters { get; set; }

    /// <summary><c>sync</c> (default) or <c>async</c>.</summary>
    public string? Mode { get; set; }
}

/// <summary>Generation parameters; every one is optional.</summary>
public sealed class ExecutionParameters
{
    public double? Temperature { get; set; }
    public int? MaxTokens { get; set; }
    public int? NumCtx { get; set; }
    public string? System { get; set; }
    public long? Seed { get; set; }
    public double? TopP { get; set; }
    public int? TimeoutSeconds { get; set; }
}

/// <summary>The values <c>execution_type</c> and <c>mode</c> accept.</summary>
public static class ExecutionKinds
{
    public const string Simple = "simple";
    public const string Orchestrator = "orchestrator";
    public const string Sync = "sync";
    public const string Async = "async";

    public static readonly string[] ExecutionTypes = [Simple, Orchestrator];
    public static readonly string[] Modes = [Sync, Async];
}

/// <summary>The outcome of one execution, with the flow that ran and its metrics.</summary>
public sealed class ExecutionResult
{
    public required Guid ExecutionId { get; init; }

    /// <summary><c>queued|running|completed|failed|cancelled|timed_out</c>.</summary>
    public required string Status { get; init; }
    public required string ExecutionType { get; init; }

    /// <summary>The model that ran, as resolved by LabService (<c>mistral:7b</c>).</summary>
    public string? Model { get; init; }

    /// <summary><c>ollama</c> or <c>simulator</c>: a simulated answer must never pass for a real one.</summary>
    public string? ModelServer { get; init; }
    public string? Output { get; init; }
    public required FlowState Flow { get; init; }
    public required ExecutionMetrics Metrics { get; init; }

    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public ExecutionError? Error { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? CompletedAt { get; init; }

    /// <summary>How many times it has been started (more than 1 after a Backend replica died running it).</summary>
    public int Attempt { get; init; }

    /// <summary>Related resources: <c>self</c> (<c>GET /api/v1/executions/{id}</c>).</summary>
    public Dictionary<string, string> Links { get; init; } = [];
}

/// <summary>The graph that ran: nodes in the order they started, the edges taken, and how many passes it made.</summary>
public sealed class FlowState
{
    public required List<NodeState> Nodes { get; init; }
    public required List<FlowEdge> Edges { get; init; }
    public required int Iterations { get; init; }
}

public sealed class FlowEdge
{
    public required string From { get; init; }
    public required string To { get; init; }
}

public sealed class NodeState
{
    public required string Name { get; init; }
    public required string Status { get; init; }
    public required int Attempt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? EndedAt { get; init; }
    public double? DurationMs { get; init; }
    public string? Output { get; init; }
    public Lab.InferenceMetrics? Metrics { get; init; }

    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public ExecutionError? Error { get; init; }
}

public sealed class ExecutionMetrics
{
    /// <summary>Wall time the Backend measured, from accepting the request to having the answer.</summary>
    public required double TotalDurationMs { get; init; }
    public double? TimeToFirstTokenMs { get; init; }
    public double? LoadDurationMs { get; init; }
    public int? PromptTokens { get; init; }
    public int? CompletionTokens { get; init; }
    public double? TokensPerSecond { get; init; }
    public required int ModelCalls { get; init; }
}

public sealed class ExecutionError
{
    public required string Code { get; init; }
    public required string Message { get; init; }
}
