using System.Text;
using AgentLab.LabService.Orchestration.LabGraph;
using AgentLab.LabService.Orchestration.Runtime;
using Microsoft.Extensions.AI;

namespace AgentLab.LabService.Orchestration.Definitions;

/// <summary>
/// Compiles a validated <see cref="GraphDefinition"/> into a runtime <see cref="Graph"/>: each node a worker whose
/// system prompt is its <c>role</c>, on its own model; <c>verdict</c> nodes answer under the lab validator's verdict
/// schema (one re-ask, then <c>invalid_verdict</c>); <c>when</c> edges become conditional edges on the verdict,
/// <c>$end</c> the end, and a verdict with no route stops the run with <c>no_route</c>.
/// </summary>
/// <remarks>
/// The model calls, the verdict re-ask and the tool loop are the lab graph's own (<see cref="ExecutorNode"/>,
/// <see cref="ValidatorNode"/>), so a custom graph behaves exactly like the built-in one where they overlap.
/// </remarks>
public sealed class CustomGraphFactory(PromptLibrary prompts)
{
    public const string NoRouteCode = "no_route";

    /// <summary>The graph name reported in results: custom graphs are told apart from the built-in <c>lab</c>.</summary>
    public static string GraphName(GraphDefinition definition) => $"custom:{definition.Name}";

    /// <summary>
    /// Builds the graph. <paramref name="definition"/> must have passed <see cref="GraphValidator"/>.
    /// <paramref name="settings"/> carries the request's model and parameters; <paramref name="nodeModels"/> maps a
    /// node's <c>model</c> (as written) to the resolved tag (a model missing from it is used as written).
    /// Throws <see cref="UnknownToolException"/> for a node tool <paramref name="tools"/> does not know.
    /// </summary>
    public (Graph Graph, IReadOnlyList<IGraphObserver> Observers) Build(GraphDefinition definition, LabGraphSettings settings,
        IReadOnlyDictionary<string, string> nodeModels, ILabToolProvider tools)
    {
        ArgumentNullException.ThrowIfNull(definition.Nodes);
        ArgumentNullException.ThrowIfNull(definition.Edges);
        var retryPrompt = prompts.Get(LabWorkers.Validator);
        var builder = new GraphBuilder(GraphName(definition));
        var verdictNodes = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in definition.Nodes)
        {
            var model = node.Model is { Length: > 0 } m ? nodeModels.GetValueOrDefault(m, m) : settings.Model;
            var nodeTools = node.Tools is { Count: > 0 } names ? tools.Resolve(names) : [];
            builder.AddNode(new CustomGraphNode(node, settings with { Model = model }, nodeTools, retryPrompt), LabGraphFactory.WorkerRetry);
            if (node.IsVerdict)
                verdictNodes.Add(node.Name!);
        }

        // Verdicts each verdict node routes; null: it has an unconditional edge, so every verdict routes.
        var routed = new Dictionary<string, HashSet<string>?>(StringComparer.Ordinal);
        foreach (var name in verdictNodes)
            routed[name] = new HashSet<string>(StringComparer.Ordinal);
        foreach (var edge in definition.Edges)
        {
            var to = edge.To == GraphDefinition.End ? Graph.End : edge.To!;
            if (!verdictNodes.Contains(edge.From!))
                builder.AddEdge(edge.From!, to);
            else if (edge.When is { } when)
            {
                builder.AddEdge(edge.From!, to, (r, _) => r.Route == when, when);
                routed[edge.From!]?.Add(when);
            }
            else
            {
                // The fallback edge: taken for any verdict without its own edge (GraphDefinition's routing rules).
                var covered = definition.Edges.Where(e => e.From == edge.From && e.When is not null).Select(e => e.When!).ToHashSet(StringComparer.Ordinal);
                builder.AddEdge(edge.From!, to, (r, _) => r.Route is null || !covered.Contains(r.Route), "otherwise");
                routed[edge.From!] = null;
            }
        }

        var graph = builder.WithEntry(definition.Entry!).Build();
        return (graph, [new NoRouteObserver(routed)]);
    }

    /// <summary>
    /// The run's answer: the output of the last text node that completed (a verdict node's JSON is a judgement, not
    /// the answer); the last node's output when no text node ran.
    /// </summary>
    public static string? SelectOutput(GraphRunResult result) =>
        result.Flow.Nodes.LastOrDefault(n => n.Status == NodeRun.CompletedStatus && n.Route is null)?.Output ?? result.Output;

    /// <summary>Stops the run with <c>no_route</c> when a verdict node returned a verdict none of its edges take.</summary>
    private sealed class NoRouteObserver(IReadOnlyDictionary<string, HashSet<string>?> routed) : IGraphObserver
    {
        public StopReason? OnStep(ObservedStep step)
        {
            foreach (var run in step.Runs)
            {
                if (run.Status != NodeRun.CompletedStatus || run.Route is not { } verdict
                    || !routed.TryGetValue(run.Name, out var covered) || covered is null || covered.Contains(verdict))
                    continue;
                return new StopReason
                {
                    Code = NoRouteCode,
                    Node = run.Name,
                    Message = $"'{run.Name}' returned the verdict '{verdict}', and the graph has no edge from '{run.Name}' for it. " +
                        $"Add an edge with \"when\": \"{verdict}\" (or one without \"when\") if the run should go on.",
                };
            }
            return null;
        }

        public void OnCompleted(GraphRunResult result, RunBudget budget) { }
    }
}

/// <summary>
/// One node of a custom graph: its <c>role</c> as the system prompt; the task and the previous node's output as the
/// user message; a text answer (with its tools) or a structured verdict.
/// </summary>
public sealed class CustomGraphNode(GraphNodeDefinition definition, LabGraphSettings settings, IReadOnlyList<AITool> tools,
    Prompt retryPrompt) : ILabNode
{
    public string Name => definition.Name!;

    public async ValueTask<NodeResult> RunAsync(GraphState state, NodeContext ctx, CancellationToken ct)
    {
        List<ChatMessage> messages = [new(ChatRole.System, definition.Role!), new(ChatRole.User, UserMessage(state))];
        var options = LabWorkers.Options(settings);
        if (!definition.IsVerdict)
            return new NodeResult(await ExecutorNode.RunWithToolsAsync(messages, options, tools, ctx, ct).ConfigureAwait(false));

        // As for the lab validator: a verdict cut short by max_tokens would be malformed JSON.
        options.MaxOutputTokens = null;
        options.ResponseFormat = ChatResponseFormat.ForJsonSchema(ValidatorNode.VerdictSchema, "verdict");
        return await ValidatorNode.AskForVerdictAsync(messages, options, retryPrompt, Name, ctx, ct).ConfigureAwait(false);
    }

    private static string UserMessage(GraphState state)
    {
        var text = new StringBuilder("Task:\n").Append(state.Input);
        if (state.LastNode is { } previous && state.OutputOf(previous) is { } output)
            text.Append("\n\nOutput of the previous step (").Append(previous).Append("):\n").Append(output);
        return text.ToString();
    }
}
