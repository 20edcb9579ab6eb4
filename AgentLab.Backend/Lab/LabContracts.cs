namespace AgentLab.Backend.Lab;

/// <summary>LabService <c>POST /inference/</c> body.</summary>
public sealed class InferenceRequest
{
    public required string Prompt { get; init; }
    public string? Model { get; init; }
    public string? System { get; init; }
    public InferenceParameters? Parameters { get; init; }
}

public sealed class InferenceParameters
{
    public double? Temperature { get; init; }
    public int? MaxTokens { get; init; }
    public int? NumCtx { get; init; }
    public long? Seed { get; init; }
    public double? TopP { get; init; }
    public int? TimeoutSeconds { get; init; }
}

/// <summary>LabService <c>POST /inference/</c> answer (JSON form).</summary>
public sealed class InferenceResponse
{
    public string? Output { get; init; }
    public string? Model { get; init; }
    public string? RequestedModel { get; init; }
    public string? ModelServer { get; init; }
    public string? DoneReason { get; init; }
    public InferenceMetrics? Metrics { get; init; }
}

/// <summary>
/// One NDJSON event of <c>POST /inference/</c>: <c>started</c> (<see cref="Model"/>, <see cref="ModelServer"/>),
/// <c>token</c> (<see cref="Content"/>), then <c>completed</c> (<see cref="Result"/>) or <c>error</c> (<see cref="Error"/>).
/// </summary>
public sealed class InferenceStreamEvent
{
    public string Type { get; init; } = "";
    public string? Model { get; init; }
    public string? ModelServer { get; init; }
    public string? Content { get; init; }
    public InferenceResponse? Result { get; init; }
    public OrchestrateEventError? Error { get; init; }

    public const string StartedType = "started";
    public const string TokenType = "token";
    public const string CompletedType = "completed";
    public const string ErrorType = "error";
}

/// <summary>What one model call cost, as LabService measured it.</summary>
public sealed class InferenceMetrics
{
    public double? TotalDurationMs { get; init; }
    public double? TimeToFirstTokenMs { get; init; }
    public double? LoadDurationMs { get; init; }
    public double? PromptEvalDurationMs { get; init; }
    public double? EvalDurationMs { get; init; }
    public int? PromptTokens { get; init; }
    public int? CompletionTokens { get; init; }
    public double? TokensPerSecond { get; init; }
    public double? WallDurationMs { get; init; }
}

/// <summary>LabService <c>GET /models/</c>; the Backend serves the same shape at <c>/api/v1/models</c>.</summary>
public sealed class ModelList
{
    public string? ModelServer { get; init; }

    /// <summary>The tag LabService runs when a request names no model (absent from an older LabService).</summary>
    public string? DefaultModel { get; init; }

    /// <summary>The <c>num_ctx</c> LabService sends when a request sets none: the window of such a call.</summary>
    public int? DefaultNumCtx { get; init; }

    public List<ModelInfo> Models { get; init; } = [];
}

public sealed class ModelInfo
{
    public required string Name { get; init; }
    public List<string> Aliases { get; init; } = [];
    public string? Family { get; init; }
    public string? ParameterSize { get; init; }
    public string? QuantizationLevel { get; init; }
    public long? Size { get; init; }
    public string? ModifiedAt { get; init; }
    public List<string> Capabilities { get; init; } = [];
    public int? ContextLength { get; init; }
    public bool? Loaded { get; init; }
}

/// <summary>LabService <c>GET /health</c>.</summary>
public sealed class LabHealthReport
{
    public string? Status { get; init; }
    public Dictionary<string, LabHealthCheck> Checks { get; init; } = [];
}

public sealed class LabHealthCheck
{
    public string? Status { get; init; }
    public double? DurationMs { get; init; }
    public string? Description { get; init; }
    public Dictionary<string, System.Text.Json.JsonElement>? Data { get; init; }
}
