using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Microsoft.Extensions.AI;

namespace AgentLab.LabService.Orchestration.Runtime;

/// <summary>
/// Runs a <see cref="Graph"/> step by step: the nodes ready in a step run in parallel on the same state snapshot,
/// their results are merged in a fixed order into a new state, then the edges decide the next step. The run streams
/// every event through a channel; the last event is always a <see cref="RunCompletedEvent"/>.
/// </summary>
public sealed class GraphRunner(IChatClient chat)
{
    /// <summary>Runs the graph; enumerate to drive it. Stopping the enumeration early cancels the run.</summary>
    public async IAsyncEnumerable<GraphEvent> RunAsync(Graph graph, GraphState initial, GraphRunOptions? options = null,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        options ??= new GraphRunOptions();
        var channel = Channel.CreateUnbounded<GraphEvent>(new UnboundedChannelOptions { SingleReader = true });
        using var runCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var scope = new RunScope(chat, channel.Writer, options.Budget, options.Time);
        var execution = Task.Run(() => ExecuteAsync(graph, initial, options, scope, channel.Writer, ct, runCts.Token), CancellationToken.None);
        try
        {
            await foreach (var e in channel.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
                yield return e;
        }
        finally
        {
            // The consumer left (or finished): make sure nothing keeps running behind its back.
            await runCts.CancelAsync().ConfigureAwait(false);
            await execution.ConfigureAwait(false);
        }
    }

    /// <summary>Runs to the end and returns the result, ignoring the intermediate events.</summary>
    public async Task<GraphRunResult> RunToEndAsync(Graph graph, GraphState initial, GraphRunOptions? options = null,
        CancellationToken ct = default)
    {
        GraphRunResult? result = null;
        await foreach (var e in RunAsync(graph, initial, options, ct).ConfigureAwait(false))
        {
            if (e is RunCompletedEvent done)
                result = done.Result;
        }
        return result!;
    }

    private static async Task ExecuteAsync(Graph graph, GraphState initial, GraphRunOptions options, RunScope scope,
        ChannelWriter<GraphEvent> writer, CancellationToken callerCt, CancellationToken runCt)
    {
        using var wallCts = options.Budget.MaxWallTime is { } wall
            ? new CancellationTokenSource(wall, options.Time)
            : new CancellationTokenSource();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(runCt, wallCts.Token);
        var ct = linked.Token;

        var state = initial;
        var flow = new GraphFlow();
        var restorable = (options.PreviousNodes ?? [])
            .Where(n => n.Status == NodeRun.CompletedStatus)
            .GroupBy(n => n.Name, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => new Queue<NodeRun>(g), StringComparer.Ordinal);
        var arrivals = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        List<string> pending = [graph.Entry];
        StopReason? stop = null;
        var steps = 0;

        try
        {
            while (pending.Count > 0 && stop is null)
            {
                stop = StopBeforeStep(scope, callerCt, wallCts.Token);
                if (stop is not null)
                    break;
                if (steps + pending.Count > options.MaxSteps)
                {
                    stop = new StopReason
                    {
                        Code = StopCodes.StepLimit,
                        Message = $"The run reached its step limit of {options.MaxSteps} node executions; " +
                            $"{string.Join(", ", pending)} did not run. Raise the limit or check the graph for a loop.",
                    };
                    break;
                }
                steps += pending.Count;

                var snapshot = state;
                using var stepCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var outcomes = await Task.WhenAll(pending.Select(name =>
                    RunNodeAsync(graph.Nodes[name], snapshot, scope, restorable, steps, stepCts))).ConfigureAwait(false);

                var completed = new List<(string Name, NodeResult Result)>();
                foreach (var outcome in outcomes)
                {
                    flow.Nodes.AddRange(outcome.Runs);
                    if (outcome.Result is { } nodeResult)
                    {
                        state = state.With(outcome.Name, nodeResult);
                        completed.Add((outcome.Name, nodeResult));
                    }
                    else if (stop is null && outcome.Stop is not null)
                        stop = outcome.Stop;
                }
                if (outcomes.Any(o => o.Cancelled) && stop is null)
                    stop = StopBeforeStep(scope, callerCt, wallCts.Token) ?? Cancelled();
                if (stop is not null)
                    break;

                var observed = new ObservedStep(state, [.. outcomes.SelectMany(o => o.Runs)], scope.Usage, options.Budget,
                    (level, message) => scope.Emit(new LogEvent { Node = null, Level = level, Message = message, Ts = scope.Now }));
                foreach (var observer in options.Observers)
                    stop ??= observer.OnStep(observed);
                if (stop is not null)
                    break;

                pending = NextStep(graph, state, completed, arrivals, flow, ref stop);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException)
        {
            stop ??= StopBeforeStep(scope, callerCt, wallCts.Token) ?? Cancelled();
        }

        stop ??= new StopReason { Code = StopCodes.Completed, Message = "The run completed." };
        flow.Iterations = graph.IterationNode is { } iterationNode
            ? state.RunCount(iterationNode)
            : state.RunCounts.Values.DefaultIfEmpty(0).Max();
        var usage = scope.Usage;
        var result = new GraphRunResult
        {
            Graph = graph.Name,
            Output = graph.OutputNode is { } outputNode ? state.OutputOf(outputNode)
                : state.LastNode is { } last ? state.OutputOf(last) : null,
            Flow = flow,
            State = state,
            StopReason = stop,
            Metrics = new RunMetrics
            {
                TotalDurationMs = usage.Elapsed.TotalMilliseconds,
                TimeToFirstTokenMs = scope.FirstTokenMs,
                ModelCalls = usage.ModelCalls,
                PromptTokens = usage.PromptTokens,
                CompletionTokens = usage.CompletionTokens,
                ToolCalls = scope.ToolCalls,
                Steps = flow.Nodes.Count,
            },
        };
        foreach (var observer in options.Observers)
            observer.OnCompleted(result, options.Budget);
        scope.Emit(new RunCompletedEvent { Result = result, Ts = scope.Now });
        writer.TryComplete();
    }

    private static List<string> NextStep(Graph graph, GraphState state, List<(string Name, NodeResult Result)> completed,
        Dictionary<string, HashSet<string>> arrivals, GraphFlow flow, ref StopReason? stop)
    {
        var next = new List<string>();
        foreach (var (name, result) in completed)
        {
            if (!graph.Outgoing.TryGetValue(name, out var edges))
                continue;
            foreach (var edge in edges)
            {
                if (edge.Condition is { } condition && !condition(result, state))
                    continue;
                flow.Edges.Add(new EdgeTaken(edge.From, edge.To, edge.Label, state.Step));
                if (edge.To == Graph.End)
                    continue;
                if (edge.To == Graph.Reject)
                {
                    stop ??= new StopReason
                    {
                        Code = StopCodes.Rejected,
                        Node = name,
                        Message = $"'{name}' rejected the result ({edge.Label ?? result.Route ?? "reject"}); see its output for the reasons.",
                    };
                    continue;
                }
                if (graph.JoinInputs.TryGetValue(edge.To, out var inputs))
                {
                    // Fan-in: wait until every input has delivered since the join last ran.
                    var arrived = arrivals.TryGetValue(edge.To, out var set) ? set : arrivals[edge.To] = new(StringComparer.Ordinal);
                    arrived.Add(name);
                    if (!inputs.IsSubsetOf(arrived))
                        continue;
                    arrived.Clear();
                }
                if (!next.Contains(edge.To))
                    next.Add(edge.To);
            }
        }
        return stop is null ? next : [];
    }

    private static StopReason? StopBeforeStep(RunScope scope, CancellationToken callerCt, CancellationToken wallCt)
    {
        if (callerCt.IsCancellationRequested)
            return Cancelled();
        if (wallCt.IsCancellationRequested)
            return RunScope.Exhausted(BudgetKinds.WallTime, $"the run used its wall-time budget of {scope.Budget.MaxWallTime?.TotalSeconds:0.###} s");
        return scope.Check(forModelCall: false);
    }

    private static StopReason Cancelled() => new() { Code = StopCodes.Cancelled, Message = "The run was cancelled by the caller." };

    private sealed record NodeOutcome(string Name, List<NodeRun> Runs, NodeResult? Result, StopReason? Stop, bool Cancelled);

    private static async Task<NodeOutcome> RunNodeAsync(GraphNode graphNode, GraphState state, RunScope scope,
        Dictionary<string, Queue<NodeRun>> restorable, int step, CancellationTokenSource stepCts)
    {
        var name = graphNode.Name;
        var runs = new List<NodeRun>(1);
        scope.AddStep();

        if (restorable.TryGetValue(name, out var queue) && queue.TryDequeue(out var previous))
        {
            // Completed in an earlier attempt of this run: restore its output instead of running it again.
            var restored = new NodeRun
            {
                Name = name, Status = NodeRun.CompletedStatus, Attempt = previous.Attempt, StartedAt = previous.StartedAt,
                EndedAt = previous.EndedAt, DurationMs = previous.DurationMs, Output = previous.Output, Route = previous.Route,
                Values = previous.Values, Metrics = previous.Metrics ?? new NodeMetrics(), Restored = true,
            };
            runs.Add(restored);
            scope.Emit(new NodeCompletedEvent { Node = name, Run = restored, Ts = scope.Now });
            return new NodeOutcome(name, runs, new NodeResult(previous.Output ?? "", previous.Route, previous.Values), null, false);
        }

        var ct = stepCts.Token;
        for (var attempt = 1; ; attempt++)
        {
            var startedAt = scope.Now;
            var started = Stopwatch.GetTimestamp();
            scope.Emit(new NodeStartedEvent { Node = name, Attempt = attempt, Step = step, Ts = startedAt });
            var ctx = new NodeContext(scope, name, attempt);
            using var span = LabTelemetry.StartNode(name, attempt, step);
            NodeRun Finish(string status, string? output, NodeRunError? error)
            {
                span?.SetStatus(status == NodeRun.CompletedStatus ? ActivityStatusCode.Unset : ActivityStatusCode.Error, error?.Message);
                span?.SetTag("agentlab.node.status", status);
                if (error is not null)
                    span?.SetTag("error.type", error.Code);
                span?.Stop(); // before a retry's backoff, which is not this attempt's work
                var duration = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                ctx.Metrics.DurationMs = duration;
                var run = new NodeRun
                {
                    Name = name, Status = status, Attempt = attempt, StartedAt = startedAt, EndedAt = scope.Now,
                    DurationMs = duration, Output = output, Metrics = ctx.Metrics, Error = error,
                };
                runs.Add(run);
                return run;
            }

            try
            {
                var result = await graphNode.Node.RunAsync(state, ctx, ct).ConfigureAwait(false);
                var run = Finish(NodeRun.CompletedStatus, result.Output, null);
                run.Route = result.Route;
                run.Values = result.Values is null ? null : new Dictionary<string, string>(result.Values, StringComparer.Ordinal);
                scope.Emit(new NodeCompletedEvent { Node = name, Run = run, Ts = scope.Now });
                return new NodeOutcome(name, runs, result, null, false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                Finish(NodeRun.CancelledStatus, null, new NodeRunError { Code = StopCodes.Cancelled, Message = "The node was cancelled." });
                scope.Emit(new NodeFailedEvent { Node = name, Code = StopCodes.Cancelled, Message = "The node was cancelled.", Attempt = attempt, Ts = scope.Now });
                return new NodeOutcome(name, runs, null, null, true);
            }
            catch (Exception ex)
            {
                var code = ex switch
                {
                    GraphStopException stopEx => stopEx.Code,
                    _ => LabExceptionHandler.TryMap(ex)?.Code ?? "node_error",
                };
                var retryable = ex is not GraphStopException and not OperationCanceledException
                    && (graphNode.Retry.RetryOn?.Invoke(ex) ?? true);
                var willRetry = retryable && attempt < graphNode.Retry.MaxAttempts && !ctx.HasProducedOutput;
                Finish(NodeRun.FailedStatus, null, new NodeRunError { Code = code, Message = ex.Message });
                scope.Emit(new NodeFailedEvent { Node = name, Code = code, Message = ex.Message, Attempt = attempt, WillRetry = willRetry, Ts = scope.Now });
                if (willRetry)
                {
                    try
                    {
                        await Task.Delay(graphNode.Retry.DelayBefore(attempt + 1), scope.Time, ct).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        return new NodeOutcome(name, runs, null, null, true);
                    }
                    continue;
                }

                // Parallel siblings have no reason to continue once the run is going to stop.
                await stepCts.CancelAsync().ConfigureAwait(false);
                var stop = ex switch
                {
                    BudgetExhaustedException b => new StopReason { Code = b.Code, Budget = b.Budget, Message = b.Message, Node = name },
                    GraphStopException g => new StopReason { Code = g.Code, Message = g.Message, Node = name },
                    _ => new StopReason
                    {
                        Code = StopCodes.NodeFailed, Node = name, Error = ex, ErrorCode = code,
                        Message = $"Node '{name}' failed after {attempt} attempt(s): {ex.Message}",
                    },
                };
                return new NodeOutcome(name, runs, null, stop, false);
            }
        }
    }
}
