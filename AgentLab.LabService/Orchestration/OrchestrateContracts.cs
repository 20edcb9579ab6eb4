using AgentLab.LabService.Inference;
using AgentLab.LabService.Orchestration.Runtime;
using System.Text.Json.Nodes;

namespace AgentLab.LabService.Orchestration;

/// <summary>Body of <c>POST /orchestrate/</c>: like <c>/inference/</c>, plus the graph's workers, tools and limits.</summary>
public sealed class OrchestrateRequest
{
    public string? Prompt { get; set; }
    public string? Model { get; set; }
    public List<string>? Agents { get; set; }
    public List<string>? Tools { get; set; }
    public OrchestrateParameters? Parameters { get; set; }

    /// <summary>Node runs of an earlier attempt (its <c>flow.nodes</c>): completed ones are restored, not run again.</summary>
    public List<NodeRun>? PreviousNodes { get; set; }
}

/// <summary>Model parameters for every worker, plus the run's limits. <c>timeout_seconds</c> is the run's wall-time budget.</summary>
public sealed class OrchestrateParameters
{
    public double? Temperature { get; set; }
    public int? MaxTokens { get; set; }
    public int? NumCtx { get; set; }
    public long? Seed { get; set; }
    public double? TopP { get; set; }
    public double? TimeoutSeconds { get; set; }
    public int? MaxIterations { get; set; }
    public int? MaxSteps { get; set; }
    public int? MaxModelCalls { get; set; }

    /// <summary>Budget of prompt + completion tokens over the whole run.</summary>
    public int? MaxTotalTokens { get; set; }

    internal InferenceParameters ToInference() => new()
    {
        Temperature = Temperature, MaxTokens = MaxTokens, NumCtx = NumCtx, Seed = Seed, TopP = TopP, TimeoutSeconds = TimeoutSeconds,
    };
}

/// <summary>The JSON answer of <c>POST /orchestrate/</c> (and the data of the stream's <c>completed</c> event).</summary>
public sealed class OrchestrateResponse
{
    public string? Output { get; set; }
    public required string Model { get; set; }
    public required string ModelServer { get; set; }
    public required GraphFlow Flow { get; set; }
    public required RunMetrics Metrics { get; set; }
    public required StopReason StopReason { get; set; }

    /// <summary>The monitor's run report (absent when the monitor is not among the agents).</summary>
    public JsonObject? Report { get; set; }
}

public sealed class OrchestrateCompletedEvent
{
    public long Seq { get; set; }
    public string Type => "completed";
    public required OrchestrateResponse Data { get; set; }
}

public sealed class OrchestrateErrorEvent
{
    public long Seq { get; set; }
    public string Type => "error";
    public required InferenceError Error { get; set; }

    /// <summary>What the run did before it failed, so the caller can continue it with <c>previous_nodes</c>.</summary>
    public OrchestrateResponse? Data { get; set; }
}

/// <summary>Limits for orchestration runs when the request does not set them (section <c>Orchestration</c>).</summary>
public sealed class OrchestrationOptions
{
    public const string Section = "Orchestration";

    [System.ComponentModel.DataAnnotations.Range(1, 1000)] public int MaxSteps { get; set; } = 50;
    [System.ComponentModel.DataAnnotations.Range(1, 10_000)] public int MaxModelCalls { get; set; } = 60;
    [System.ComponentModel.DataAnnotations.Range(1, 100)] public int MaxIterationsLimit { get; set; } = 10;
    [System.ComponentModel.DataAnnotations.Range(1, 86_400)] public double WallTimeSeconds { get; set; } = 1800;
}

/// <summary><c>GET /orchestrate/</c>: the graph, each worker's readiness and the model's fitness, without generating.</summary>
public sealed class OrchestratorInfo
{
    public required GraphInfo Graph { get; set; }
    public required List<WorkerInfo> Workers { get; set; }
    public required ModelFitness Model { get; set; }
    public required ModelServerStatus ModelServer { get; set; }
    public required List<string> Tools { get; set; }

    /// <summary>True when every worker is ready.</summary>
    public bool Ready { get; set; }
}

public sealed class GraphInfo
{
    public required string Name { get; set; }
    public required string Entry { get; set; }
    public required List<string> Nodes { get; set; }
    public required List<EdgeInfo> Edges { get; set; }
    public int DefaultMaxIterations { get; set; }
}

public sealed class EdgeInfo
{
    public required string From { get; set; }
    public required string To { get; set; }
    public string? Label { get; set; }
    public bool Conditional { get; set; }
}

public sealed class WorkerInfo
{
    public required string Name { get; set; }
    public bool Ready { get; set; }
    public string? PromptVersion { get; set; }

    /// <summary>Model capabilities the worker needs (<c>completion</c>, <c>json_format</c>, <c>tools</c> when tools are used).</summary>
    public required List<string> Needs { get; set; }
    public string? Reason { get; set; }
}

public sealed class ModelFitness
{
    public required string Requested { get; set; }
    public string? Name { get; set; }
    public bool Available { get; set; }
    public bool Loaded { get; set; }
    public List<string> Capabilities { get; set; } = [];
    public bool Completion { get; set; }
    public bool Tools { get; set; }
    public bool JsonFormat { get; set; }
    public string? Reason { get; set; }
}

public sealed class ModelServerStatus
{
    public bool Reachable { get; set; }
    public string? Kind { get; set; }
    public string? Version { get; set; }
    public string? Reason { get; set; }
}
