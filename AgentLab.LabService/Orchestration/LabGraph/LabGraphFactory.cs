using AgentLab.LabService.Ollama;
using AgentLab.LabService.Orchestration.Runtime;
using Microsoft.Extensions.AI;

namespace AgentLab.LabService.Orchestration.LabGraph;

/// <summary>
/// Builds the four-worker lab graph: analyzer → executor → validator, <c>revise</c> back to the executor at most
/// <see cref="LabGraphSettings.MaxIterations"/> times, <c>pass</c> → done, <c>fail</c> → rejected; the monitor
/// observes every step. <c>agents</c> picks a subset, keeping that order.
/// </summary>
public sealed class LabGraphFactory(PromptLibrary prompts)
{
    /// <summary>Model calls are not idempotent, but a call that failed before any output can be made again.</summary>
    public static RetryPolicy WorkerRetry { get; } = new(MaxAttempts: 2, InitialDelay: TimeSpan.FromMilliseconds(500),
        RetryOn: ex => ex is OllamaUnavailableException or OllamaBusyException or OllamaServerException
            or OllamaTimeoutException { Phase: OllamaTimeoutPhase.FirstToken });

    public PromptLibrary Prompts => prompts;

    /// <summary>The workers a request asks for, checked; throws <see cref="LabGraphRequestException"/>.</summary>
    public static IReadOnlyList<string> ResolveAgents(IReadOnlyList<string>? agents)
    {
        if (agents is not { Count: > 0 })
            return LabWorkers.All;
        var normalized = agents.Select(a => a?.Trim().ToLowerInvariant() ?? "").ToList();
        var unknown = normalized.Where(a => !LabWorkers.All.Contains(a)).Distinct().ToList();
        if (unknown.Count > 0)
        {
            throw new LabGraphRequestException("unknown_agent",
                $"Unknown agent(s): {string.Join(", ", unknown.Select(u => $"'{u}'"))}. The lab graph has {string.Join(", ", LabWorkers.All)}.");
        }
        if (!normalized.Contains(LabWorkers.Analyzer) && !normalized.Contains(LabWorkers.Executor))
            throw new LabGraphRequestException("invalid_agents", "'agents' must include 'analyzer' or 'executor': the graph has nothing to run.");
        if (normalized.Contains(LabWorkers.Validator) && !normalized.Contains(LabWorkers.Executor))
            throw new LabGraphRequestException("invalid_agents", "'validator' checks the executor's answer: add 'executor' to 'agents'.");
        return [.. LabWorkers.All.Where(normalized.Contains)];
    }

    public (Graph Graph, IReadOnlyList<IGraphObserver> Observers) Build(LabGraphSettings settings, IReadOnlyList<AITool> tools)
    {
        var agents = ResolveAgents(settings.Agents);
        var builder = new GraphBuilder("lab");
        var chain = new List<string>();
        if (agents.Contains(LabWorkers.Analyzer))
        {
            builder.AddNode(new AnalyzerNode(prompts.Get(LabWorkers.Analyzer), settings), WorkerRetry);
            chain.Add(LabWorkers.Analyzer);
        }
        if (agents.Contains(LabWorkers.Executor))
        {
            builder.AddNode(new ExecutorNode(prompts.Get(LabWorkers.Executor), settings, tools), WorkerRetry);
            chain.Add(LabWorkers.Executor);
            builder.WithOutput(LabWorkers.Executor).WithIterations(LabWorkers.Executor);
        }
        if (agents.Contains(LabWorkers.Validator))
        {
            builder.AddNode(new ValidatorNode(prompts.Get(LabWorkers.Validator), settings), WorkerRetry);
            chain.Add(LabWorkers.Validator);
        }
        for (var i = 1; i < chain.Count; i++)
            builder.AddEdge(chain[i - 1], chain[i]);

        if (agents.Contains(LabWorkers.Validator))
        {
            var max = settings.MaxIterations;
            // Revisions so far = executor runs - 1.
            builder.AddEdge(LabWorkers.Validator, LabWorkers.Executor,
                (r, s) => r.Route == Verdict.Revise && s.RunCount(LabWorkers.Executor) - 1 < max, Verdict.Revise);
            builder.AddEdge(LabWorkers.Validator, Graph.End,
                (r, s) => r.Route == Verdict.Revise && s.RunCount(LabWorkers.Executor) - 1 >= max, "max_iterations");
            builder.AddEdge(LabWorkers.Validator, Graph.End, (r, _) => r.Route == Verdict.Pass, Verdict.Pass);
            builder.AddEdge(LabWorkers.Validator, Graph.Reject, (r, _) => r.Route == Verdict.Fail, Verdict.Fail);
        }
        else
            builder.AddEdge(chain[^1], Graph.End);

        IReadOnlyList<IGraphObserver> observers = agents.Contains(LabWorkers.Monitor) ? [new MonitorObserver(settings)] : [];
        return (builder.WithEntry(chain[0]).Build(), observers);
    }
}
