using System.Collections.Immutable;

namespace AgentLab.LabService.Orchestration.Runtime;

/// <summary>
/// The run's state between nodes. Immutable: every completed step produces a new instance, so nodes running in
/// parallel read the same snapshot and a node can never change what another one sees mid-step.
/// </summary>
public sealed class GraphState
{
    public static GraphState Initial(string input, IReadOnlyDictionary<string, string>? values = null) =>
        new(input, ImmutableDictionary<string, NodeResult>.Empty.WithComparers(StringComparer.Ordinal),
            ImmutableDictionary<string, int>.Empty.WithComparers(StringComparer.Ordinal),
            values is null ? ImmutableDictionary<string, string>.Empty.WithComparers(StringComparer.Ordinal)
                : ImmutableDictionary.CreateRange(StringComparer.Ordinal, values),
            step: 0, lastNode: null);

    private GraphState(string input, ImmutableDictionary<string, NodeResult> results, ImmutableDictionary<string, int> runCounts,
        ImmutableDictionary<string, string> values, int step, string? lastNode)
    {
        Input = input;
        Results = results;
        RunCounts = runCounts;
        Values = values;
        Step = step;
        LastNode = lastNode;
    }

    /// <summary>The task the run was started with (the user's prompt).</summary>
    public string Input { get; }

    /// <summary>The latest result of every node that has completed.</summary>
    public ImmutableDictionary<string, NodeResult> Results { get; }

    /// <summary>How many times each node has completed.</summary>
    public ImmutableDictionary<string, int> RunCounts { get; }

    /// <summary>Named values nodes pass on (merged from <see cref="NodeResult.Values"/>), plus the run's parameters.</summary>
    public ImmutableDictionary<string, string> Values { get; }

    /// <summary>Node completions so far.</summary>
    public int Step { get; }

    /// <summary>The node that completed last (in merge order).</summary>
    public string? LastNode { get; }

    public string? OutputOf(string node) => Results.TryGetValue(node, out var r) ? r.Output : null;

    public int RunCount(string node) => RunCounts.GetValueOrDefault(node);

    public GraphState With(string node, NodeResult result)
    {
        var values = Values;
        if (result.Values is { Count: > 0 } updates)
            values = values.SetItems(updates);
        return new GraphState(Input, Results.SetItem(node, result), RunCounts.SetItem(node, RunCount(node) + 1), values,
            Step + 1, node);
    }
}
