namespace AgentLab.LabService.Orchestration.LabGraph;

/// <summary>What one lab-graph run is built from: the model and its parameters, the workers, tools and iterations.</summary>
public sealed record LabGraphSettings
{
    /// <summary>The resolved Ollama tag every worker uses.</summary>
    public required string Model { get; init; }
    public float? Temperature { get; init; }
    public int? MaxTokens { get; init; }
    public int? NumCtx { get; init; }
    public long? Seed { get; init; }

    /// <summary>Workers to use; null or empty: all four.</summary>
    public IReadOnlyList<string>? Agents { get; init; }

    /// <summary>How many times a <c>revise</c> verdict may send the answer back to the executor.</summary>
    public int MaxIterations { get; init; } = DefaultMaxIterations;

    public const int DefaultMaxIterations = 2;
}

/// <summary>A request the lab graph cannot be built from: 400 with <see cref="Code"/>.</summary>
public sealed class LabGraphRequestException(string code, string message) : Exception(message)
{
    public string Code { get; } = code;
}
