using System.Text.Json.Serialization;

namespace AgentLab.LabService.Orchestration.Definitions;

/// <summary>
/// A custom graph as a lab user writes it (snake_case JSON): named nodes, each a role prompt on a model, and edges
/// between them, optionally conditioned on the verdict of a node whose <c>output</c> is <c>verdict</c>.
/// <see cref="GraphValidator"/> decides whether it can run; unknown members are refused so a misspelt
/// <c>when</c> is an error, never an unconditional edge.
/// </summary>
/// <remarks>
/// Routing (what the runtime must do, and what the validator guarantees):
/// a <c>text</c> node has exactly one outgoing edge, unconditional. A <c>verdict</c> node has at most one edge per
/// verdict value (<c>pass</c>, <c>revise</c>, <c>fail</c>) and at most one unconditional edge, which is taken for any
/// verdict without its own edge. A verdict with neither ends the run as failed (<c>no_route</c>): uncovered verdicts
/// are allowed on purpose, since "fail" usually means stop. <c>$end</c> ends the run successfully.
/// Custom graphs have no fan-out: one node runs at a time.
/// </remarks>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class GraphDefinition
{
    /// <summary>The terminal: an edge to it ends the run.</summary>
    public const string End = "$end";

    /// <summary>Used when <see cref="MaxSteps"/> is left out.</summary>
    public const int DefaultMaxSteps = 20;

    public string? Name { get; set; }
    public string? Description { get; set; }
    public string? Entry { get; set; }

    /// <summary>Node runs allowed per run (1–100; <see cref="DefaultMaxSteps"/> when absent): bounds every loop.</summary>
    public int? MaxSteps { get; set; }

    public List<GraphNodeDefinition>? Nodes { get; set; }
    public List<GraphEdgeDefinition>? Edges { get; set; }

    [JsonIgnore]
    public int EffectiveMaxSteps => MaxSteps ?? DefaultMaxSteps;
}

/// <summary>One worker: its role (system prompt), the model it runs on, and what it outputs.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class GraphNodeDefinition
{
    public string? Name { get; set; }

    /// <summary>The node's system prompt.</summary>
    public string? Role { get; set; }

    /// <summary>Model name or alias; absent means the run's model (or <c>Lab:DefaultModel</c>).</summary>
    public string? Model { get; set; }

    /// <summary><c>text</c> (default) or <c>verdict</c> (a structured pass/revise/fail answer edges can branch on).</summary>
    public string? Output { get; set; }

    /// <summary>Built-in tools the node may call.</summary>
    public List<string>? Tools { get; set; }

    [JsonIgnore]
    public bool IsVerdict => Output == GraphOutputs.Verdict;
}

/// <summary>An edge; <see cref="When"/> (a verdict value) makes it conditional.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class GraphEdgeDefinition
{
    public string? From { get; set; }
    public string? To { get; set; }
    public string? When { get; set; }
}

/// <summary>The values of <see cref="GraphNodeDefinition.Output"/>.</summary>
public static class GraphOutputs
{
    public const string Text = "text";
    public const string Verdict = "verdict";
    public static readonly IReadOnlyList<string> All = [Text, Verdict];
}

/// <summary>The verdict values a conditional edge may name (the validator's structured verdict).</summary>
public static class GraphVerdicts
{
    public const string Pass = "pass";
    public const string Revise = "revise";
    public const string Fail = "fail";
    public static readonly IReadOnlyList<string> All = [Pass, Revise, Fail];
}

/// <summary>One reason a definition cannot run: where (a JSON path such as <c>edges[2].to</c>) and why.</summary>
public sealed record GraphError(string Path, string Message);
