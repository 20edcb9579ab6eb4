using System.Globalization;
using System.Text.Json.Nodes;
using AgentLab.LabService.Orchestration.Runtime;

namespace AgentLab.LabService.Orchestration.LabGraph;

/// <summary>
/// The monitor: watches every step (timings, tokens, budget) and says so in <c>log</c> events, stops the run with
/// a reason that names the node when a budget is overrun, and writes the run report into the result.
/// </summary>
public sealed class MonitorObserver(LabGraphSettings settings) : IGraphObserver
{
    public StopReason? OnStep(ObservedStep step)
    {
        var usage = step.Usage;
        var budget = step.Budget;
        foreach (var run in step.Runs)
        {
            step.Log("information", string.Create(CultureInfo.InvariantCulture,
                $"monitor: {run.Name} attempt {run.Attempt} {run.Status} in {run.DurationMs:0.0} ms, " +
                $"{run.Metrics.ModelCalls} model call(s), {run.Metrics.PromptTokens}+{run.Metrics.CompletionTokens} tokens; " +
                $"run so far: {usage.ModelCalls}{Limit(budget.MaxModelCalls)} calls, {usage.Tokens}{Limit(budget.MaxTokens)} tokens, " +
                $"{usage.Elapsed.TotalMilliseconds:0} ms{Limit(budget.MaxWallTime?.TotalMilliseconds)}"));
        }

        // A token budget can be overrun by the call in flight (it is checked before each call): stop right here.
        var node = step.State.LastNode;
        if (budget.MaxTokens is { } maxTokens && usage.Tokens > maxTokens)
            return Stop(BudgetKinds.Tokens, $"after '{node}' the run has used {usage.Tokens} tokens, over its budget of {maxTokens}");
        if (budget.MaxWallTime is { } wall && usage.Elapsed > wall)
            return Stop(BudgetKinds.WallTime, $"after '{node}' the run has taken {usage.Elapsed.TotalSeconds:0.###} s, over its budget of {wall.TotalSeconds:0.###} s");
        return null;

        StopReason Stop(string kind, string message)
        {
            step.Log("warning", $"monitor: stopping the run: {message}");
            return new StopReason
            {
                Code = StopCodes.BudgetExhausted,
                Budget = kind,
                Node = node,
                Message = $"The monitor stopped the run: {message}. Raise the budget or simplify the task.",
            };
        }
    }

    public void OnCompleted(GraphRunResult result, RunBudget budget)
    {
        var state = result.State;
        var verdictText = state.Results.TryGetValue(LabWorkers.Validator, out var v) ? v.Route : null;
        var steps = new JsonArray();
        foreach (var run in result.Flow.Nodes)
        {
            steps.Add(new JsonObject
            {
                ["node"] = run.Name,
                ["attempt"] = run.Attempt,
                ["status"] = run.Status,
                ["duration_ms"] = Math.Round(run.DurationMs, 3),
                ["model_calls"] = run.Metrics.ModelCalls,
                ["tokens"] = run.Metrics.PromptTokens + run.Metrics.CompletionTokens,
                ["prompt_version"] = run.Metrics.PromptVersion,
                ["restored"] = run.Restored == true,
            });
        }
        var slowest = result.Flow.Nodes.Where(n => n.Restored != true).OrderByDescending(n => n.DurationMs).FirstOrDefault();
        result.Report = new JsonObject
        {
            ["stop_reason"] = result.StopReason.Code,
            ["message"] = result.StopReason.Message,
            ["iterations"] = result.Flow.Iterations,
            ["max_iterations"] = settings.MaxIterations,
            ["final_verdict"] = verdictText,
            ["max_iterations_reached"] = verdictText == Verdict.Revise && result.StopReason.IsSuccess,
            ["slowest_node"] = slowest?.Name,
            ["steps"] = steps,
            ["usage"] = new JsonObject
            {
                ["model_calls"] = result.Metrics.ModelCalls,
                ["prompt_tokens"] = result.Metrics.PromptTokens,
                ["completion_tokens"] = result.Metrics.CompletionTokens,
                ["tool_calls"] = result.Metrics.ToolCalls,
                ["total_duration_ms"] = Math.Round(result.Metrics.TotalDurationMs, 3),
            },
            ["budget"] = new JsonObject
            {
                ["max_model_calls"] = budget.MaxModelCalls,
                ["max_tokens"] = budget.MaxTokens,
                ["max_wall_time_ms"] = budget.MaxWallTime?.TotalMilliseconds,
            },
        };
    }

    private static string Limit(double? max) => max is { } m ? string.Create(CultureInfo.InvariantCulture, $"/{m:0}") : "";

    private static string Limit(int? max) => max is { } m ? string.Create(CultureInfo.InvariantCulture, $"/{m}") : "";
}
