namespace AgentLab.LabService.Inference;

/// <summary>Body of <c>POST /inference/</c>.</summary>
public sealed class InferenceRequest
{
    public string? Prompt { get; set; }
    public string? Model { get; set; }
    public string? System { get; set; }
    public InferenceParameters? Parameters { get; set; }
}

public sealed class InferenceParameters
{
    public double? Temperature { get; set; }
    public int? MaxTokens { get; set; }
    public int? NumCtx { get; set; }
    public long? Seed { get; set; }
    public double? TopP { get; set; }
    public double? TimeoutSeconds { get; set; }
}

public sealed class InferenceResponse
{
    public required string Output { get; set; }
    public required string Model { get; set; }
    public required string RequestedModel { get; set; }
    public required string ModelServer { get; set; }
    public required string DoneReason { get; set; }
    public required InferenceMetrics Metrics { get; set; }
}

/// <summary>Durations in ms (Ollama reports ns); TTFT and wall time are measured by LabService from before the send.</summary>
public sealed class InferenceMetrics
{
    public double TotalDurationMs { get; set; }
    public double TimeToFirstTokenMs { get; set; }
    public double LoadDurationMs { get; set; }
    public double PromptEvalDurationMs { get; set; }
    public double EvalDurationMs { get; set; }
    public int PromptTokens { get; set; }
    public int CompletionTokens { get; set; }
    public double TokensPerSecond { get; set; }
    public double WallDurationMs { get; set; }
}

// NDJSON events of the streaming mode, one object per line.

public sealed class InferenceStartedEvent
{
    public string Type => "started";
    public required string Model { get; set; }
    public required string ModelServer { get; set; }
}

public sealed class InferenceTokenEvent
{
    public string Type => "token";
    public required string Content { get; set; }
}

public sealed class InferenceCompletedEvent
{
    public string Type => "completed";
    public required InferenceResponse Result { get; set; }
}

public sealed class InferenceErrorEvent
{
    public string Type => "error";
    public required InferenceError Error { get; set; }
}

public sealed class InferenceError
{
    public required string Code { get; set; }
    public required string Message { get; set; }
    public int Status { get; set; }
}
