namespace AgentLab.LabService.Orchestration.Runtime;

/// <summary>Per-run limits; null means unlimited. Checked between steps and before every model call.</summary>
public sealed record RunBudget(int? MaxModelCalls = null, int? MaxTokens = null, TimeSpan? MaxWallTime = null)
{
    public static RunBudget Unlimited { get; } = new();
}

/// <summary>Limits and inputs of one run.</summary>
public sealed record GraphRunOptions
{
    /// <summary>Most node executions (attempts included) a run may start.</summary>
    public int MaxSteps { get; init; } = 50;
    public RunBudget Budget { get; init; } = RunBudget.Unlimited;

    /// <summary>Node runs of an earlier attempt: completed ones are restored instead of run again.</summary>
    public IReadOnlyList<NodeRun>? PreviousNodes { get; init; }

    /// <summary>Watch every step; may stop the run (the lab graph's monitor).</summary>
    public IReadOnlyList<IGraphObserver> Observers { get; init; } = [];
    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <summary>A budget ran out. Thrown by <see cref="NodeContext"/> before a model call that would exceed it; never retried.</summary>
public sealed class BudgetExhaustedException(string budget, string message) : GraphStopException(StopCodes.BudgetExhausted, message)
{
    public string Budget { get; } = budget;
}

/// <summary>What the run has used so far, as observers and nodes see it.</summary>
public sealed record RunUsage(int ModelCalls, int PromptTokens, int CompletionTokens, int Steps, TimeSpan Elapsed)
{
    public int Tokens => PromptTokens + CompletionTokens;
}

/// <summary>Observes a run between steps (e.g. the monitor); returning a <see cref="StopReason"/> stops it.</summary>
public interface IGraphObserver
{
    /// <summary>After each step's nodes completed and were merged into the state.</summary>
    StopReason? OnStep(ObservedStep step);

    /// <summary>Once at the end, before the final event: may write the result's report.</summary>
    void OnCompleted(GraphRunResult result, RunBudget budget);
}

/// <summary>One step as an observer sees it; <see cref="Log"/> writes a <c>log</c> event into the run.</summary>
public sealed record ObservedStep(GraphState State, IReadOnlyList<NodeRun> Runs, RunUsage Usage, RunBudget Budget,
    Action<string, string> Log);
