using System.Text.Json;
using AgentLab.Backend.Data;
using AgentLab.Backend.Events;
using AgentLab.Backend.Lab;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Executions;

/// <summary>
/// Runs an orchestrator execution (already <c>running</c> and held by this replica) through LabService's
/// <c>POST /orchestrate/</c> stream. Each completed node is written as it completes; when the stream breaks because
/// LabService died, the run is continued with the completed nodes as <c>previous_nodes</c>, so none runs twice. A run
/// taken over from a crashed replica starts the same way, from the nodes that replica had written.
/// The stream's <c>node_started</c>, <c>token</c>, <c>node_completed</c>, <c>node_failed</c> and <c>log</c> events go
/// to the run's <see cref="EventJournal"/> (stored, then published); its <c>completed</c>/<c>error</c> are not events
/// of their own (the terminal event says how the run ended). On a continued run LabService sends the restored nodes'
/// <c>node_completed</c> (and the monitor's lines about them) again: those are stored already and are skipped.
/// </summary>
public sealed class OrchestratorRunner(
    ExecutionStore store,
    NodeRunStore nodeRuns,
    Graphs.GraphStore graphs,
    LabServiceClient lab,
    IOptions<LabServiceOptions> labOptions,
    IOptions<OrchestratorOptions> options,
    ReplicaIdentity replica,
    TimeProvider time,
    ILogger<OrchestratorRunner> logger)
{
    public async Task<ExecutionRunner.RunOutcome> RunAsync(ExecutionRecord record, ExecutionRequest request,
        ExecutionRunner.WhenCancelled whenCancelled, ExecutionRunner.RunContext run, CancellationToken ct)
    {
        var id = record.Id;
        var journal = run.Journal;
        var started = time.GetTimestamp();
        var previous = await nodeRuns.CompletedRunsAsync(id, ct).ConfigureAwait(false);
        JsonElement? graph = null;
        if (previous.Count > 0)
            logger.OrchestrationContinuing(id, previous.Count);

        OrchestrateResult? result = null;
        Exception? failure = null;
        var resumes = 0;
        while (true)
        {
            var events = 0;
            var position = 0;
            var leaseLost = false;
            // A continued run replays what is restored before its first new node starts: stored already.
            var replaying = previous.Count > 0;
            try
            {
                graph ??= await LoadGraphAsync(record.Owner, request, run.Token).ConfigureAwait(false);
                await foreach (var e in lab.OrchestrateAsync(ToLabRequest(request, previous, graph), TimeoutFor(request), run.Token).ConfigureAwait(false))
                {
                    events++;
                    if (e.Type == OrchestrateEvent.NodeStarted)
                        replaying = false;
                    await JournalAsync(journal, e, replaying, run.Token).ConfigureAwait(false);
                    if (e.Type == OrchestrateEvent.NodeCompleted && e.Run is { } nodeRun)
                    {
                        // Positions restart with every attempt: restored nodes come back first, in the same order.
                        if (!await nodeRuns.TryUpsertAsync(id, replica.Id, ToNodeState(nodeRun, position++), run.Token).ConfigureAwait(false))
                        {
                            leaseLost = true;
                            break;   // leaving the stream disconnects from LabService, which cancels the run there
                        }
                    }
                    else if (e.Type == OrchestrateEvent.Completed)
                        result = e.Data;
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested && whenCancelled == ExecutionRunner.WhenCancelled.Abandon)
            {
                throw;
            }
            catch (OperationCanceledException) when (run.StoppedFromOutside && !ct.IsCancellationRequested)
            {
                // Cancelled by request, or the row is no longer this replica's: nothing of this run is written any more.
                leaseLost = true;
            }
            catch (LabServiceUnavailableException ex) when ((events > 0 || resumes > 0) && resumes < options.Value.ResumeAttempts && !run.Token.IsCancellationRequested)
            {
                // LabService died mid-run (or is still restarting): continue after the nodes written so far.
                resumes++;
                previous = await nodeRuns.CompletedRunsAsync(id, ct).ConfigureAwait(false);
                var delay = ResumeDelay(resumes);
                logger.OrchestrationResuming(id, previous.Count, ex.Reason, delay.TotalMilliseconds, resumes, options.Value.ResumeAttempts);
                try
                {
                    await Task.Delay(delay, time, run.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested && whenCancelled == ExecutionRunner.WhenCancelled.Abandon)
                {
                    throw;
                }
                catch (OperationCanceledException) when (run.StoppedFromOutside && !ct.IsCancellationRequested)
                {
                    leaseLost = true;
                    break;
                }
                catch (OperationCanceledException)
                {
                    failure = new OperationCanceledException(run.Token);
                    break;
                }
                continue;
            }
            catch (Exception ex) when (ex is LabServiceException || (ex is OperationCanceledException && run.Token.IsCancellationRequested))
            {
                failure = ex;
                if (ex is LabServiceException lse)
                    lse.ExecutionId ??= id;
            }

            if (leaseLost)
                break;
            if (result is null && failure is null)
                failure = new LabServiceUnavailableException("the orchestration stream ended without a result");
            break;
        }

        // Every event of the run is stored before its terminal event (and a database failure ends the run as one
        // elsewhere does).
        await journal.CompleteAsync().ConfigureAwait(false);
        if (run.StoppedFromOutside || failure is null && result is null)
        {
            var current = await store.FindAsync(id, CancellationToken.None).ConfigureAwait(false);
            if (current?.Status == ExecutionStatus.Cancelled)
                return ExecutionRunner.Discarded(logger, id, "the run", current);
            logger.OrchestrationLeaseLost(id);
            return new ExecutionRunner.RunOutcome(current, null);
        }

        var durationMs = Math.Round(time.GetElapsedTime(started).TotalMilliseconds, 3);
        var (outcome, nodes) = result is not null
            ? Finished(result, durationMs)
            : await FailedAsync(id, failure!, durationMs).ConfigureAwait(false);

        // Written even when the caller left: the run happened, and the record must say how it ended.
        var written = await store.FinishAsync(id, replica.Id, outcome, nodes, CancellationToken.None).ConfigureAwait(false);
        var stored = await store.FindAsync(id, CancellationToken.None).ConfigureAwait(false);
        if (!written)
            return ExecutionRunner.Discarded(logger, id, outcome.Status, stored);
        if (outcome.Status == ExecutionStatus.Completed)
        {
            logger.ExecutionCompleted(id, record.ExecutionType, outcome.Model ?? "(default)", outcome.ModelServer ?? "unknown",
                outcome.DurationMs ?? 0, outcome.PromptTokens ?? 0, outcome.CompletionTokens ?? 0);
        }
        else
            logger.ExecutionEnded(id, outcome.Status, outcome.ErrorCode ?? "");
        return new ExecutionRunner.RunOutcome(stored, failure);
    }

    /// <summary>
    /// One stream event into the journal, as the event log's shape: LabService's own seq and the node's name inside
    /// its run are dropped (the log has its own seq, and the node is the event's), and so is what a continued run
    /// replays (<paramref name="replaying"/>, or a node marked <c>restored</c>).
    /// </summary>
    private static ValueTask JournalAsync(EventJournal journal, OrchestrateEvent e, bool replaying, CancellationToken ct)
    {
        switch (e.Type)
        {
            case OrchestrateEvent.NodeStarted:
                return journal.AppendAsync(EventTypes.NodeStarted, e.Node, EventData.Of(w =>
                {
                    w.WriteNumber("attempt", e.Attempt ?? 1);
                    if (e.Step is { } step)
                        w.WriteNumber("step", step);
                }), ct);
            case OrchestrateEvent.Token when e.Text is { Length: > 0 } text:
                return journal.TokenAsync(e.Node ?? "", text, ct);
            case OrchestrateEvent.NodeCompleted when e.Run is { ValueKind: JsonValueKind.Object } run && !replaying && !IsRestored(run):
                return journal.AppendAsync(EventTypes.NodeCompleted, e.Node, EventData.Of(w =>
                {
                    foreach (var member in run.EnumerateObject())
                    {
                        if (member.NameEquals("name") || member.NameEquals("restored"))
                            continue;
                        member.WriteTo(w);
                    }
                }), ct);
            case OrchestrateEvent.NodeFailed:
                return journal.AppendAsync(EventTypes.NodeFailed, e.Node, EventData.Of(w =>
                {
                    w.WriteString("code", e.Code);
                    w.WriteString("message", e.Message);
                    w.WriteNumber("attempt", e.Attempt ?? 1);
                    w.WriteBoolean("will_retry", e.WillRetry ?? false);
                }), ct);
            case OrchestrateEvent.Log when !replaying:
                return journal.AppendAsync(EventTypes.Log, e.Node, EventData.Of(w =>
                {
                    w.WriteString("level", e.Level);
                    w.WriteString("message", e.Message);
                }), ct);
            default:
                return ValueTask.CompletedTask;
        }
    }

    private static bool IsRestored(JsonElement run) =>
        run.TryGetProperty("restored", out var restored) && restored.ValueKind == JsonValueKind.True;

    private TimeSpan ResumeDelay(int resume)
    {
        var o = options.Value;
        var seconds = Math.Min(o.ResumeDelaySeconds * Math.Pow(1.5, resume - 1), o.MaxResumeDelaySeconds);
        return TimeSpan.FromSeconds(seconds);
    }

    private TimeSpan TimeoutFor(ExecutionRequest request)
    {
        var o = labOptions.Value;
        return request.Parameters?.TimeoutSeconds is { } seconds
            ? TimeSpan.FromSeconds(seconds + o.TimeoutGraceSeconds)
            : TimeSpan.FromSeconds(o.RequestTimeoutSeconds);
    }

    /// <summary>How a run that LabService finished (any stop reason) is recorded.</summary>
    private static (ExecutionOutcome, IReadOnlyList<NodeStateRecord>) Finished(OrchestrateResult result, double durationMs)
    {
        var stop = result.StopReason ?? new LabStopReason { Code = "completed" };
        var (status, code) = stop.Code switch
        {
            "completed" => (ExecutionStatus.Completed, (string?)null),
            "cancelled" => (ExecutionStatus.Cancelled, "cancelled"),
            "budget_exhausted" when stop.Budget == "wall_time" => (ExecutionStatus.TimedOut, stop.Code),
            _ => (ExecutionStatus.Failed, stop.Code),   // budget_exhausted, step_limit, invalid_verdict, rejected, node_failed
        };
        var nodes = NodesOf(result.Flow);
        var outcome = Outcome(status, code, code is null ? null : stop.Message ?? stop.Code, result.Flow, nodes, durationMs) with
        {
            Model = result.Model,
            ModelServer = result.ModelServer,
            Output = status == ExecutionStatus.Completed ? result.Output : null,
            TimeToFirstTokenMs = result.Metrics?.TimeToFirstTokenMs,
        };
        return (outcome.ToOutcome(), nodes);
    }

    /// <summary>
    /// How a run that did not reach LabService's end is recorded: the flow LabService sent with its error when there
    /// is one, else the nodes written so far.
    /// </summary>
    private async Task<(ExecutionOutcome, IReadOnlyList<NodeStateRecord>)> FailedAsync(Guid id, Exception ex, double durationMs)
    {
        var (status, code, message) = ex switch
        {
            LabServiceProblemException { Status: StatusCodes.Status504GatewayTimeout } p => (ExecutionStatus.TimedOut, p.Code, p.Detail ?? p.Title),
            LabServiceProblemException p => (ExecutionStatus.Failed, p.Code, p.Detail ?? p.Title),
            LabServiceTimeoutException t => (ExecutionStatus.TimedOut, "lab_timeout", t.Message),
            LabServiceUnavailableException u => (ExecutionStatus.Failed, "lab_unavailable", u.Message),
            _ => (ExecutionStatus.Cancelled, "client_disconnected",
                "The client that submitted this synchronous execution disconnected before it finished; the orchestration run was stopped."),
        };
        LabFlow? flow = null;
        if (ex is LabServiceProblemException problem && problem.Extensions.TryGetValue("flow", out var flowJson))
            flow = flowJson.Deserialize(LabJsonContext.Default.LabFlow);
        IReadOnlyList<NodeStateRecord> nodes = flow is not null
            ? NodesOf(flow)
            : await store.NodesAsync(id, CancellationToken.None).ConfigureAwait(false);
        return (Outcome(status, code, message, flow, nodes, durationMs).ToOutcome(), nodes);
    }

    private static OutcomeDraft Outcome(string status, string? code, string? message, LabFlow? flow, IReadOnlyList<NodeStateRecord> nodes, double durationMs)
    {
        // Totals over the node runs, restored ones included: LabService counts only what its own attempt ran.
        int calls = 0, prompt = 0, completion = 0;
        foreach (var node in nodes)
        {
            if (node.Metrics is null)
                continue;
            using var doc = JsonDocument.Parse(node.Metrics);
            calls += IntOf(doc.RootElement, "model_calls");
            prompt += IntOf(doc.RootElement, "prompt_tokens");
            completion += IntOf(doc.RootElement, "completion_tokens");
        }
        var edges = (flow?.Edges ?? []).Select(e => new FlowEdge { From = e.From, To = e.To }).ToList();
        return new OutcomeDraft(status, code, message, ExecutionResults.FlowJson(edges, flow?.Iterations ?? 0), durationMs, calls, prompt, completion);
    }

    private static int IntOf(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.TryGetInt32(out var i) ? i : 0;

    private static List<NodeStateRecord> NodesOf(LabFlow? flow) =>
        (flow?.Nodes ?? []).Select((run, i) => ToNodeState(run, i)).ToList();

    private static NodeStateRecord ToNodeState(JsonElement run, int position)
    {
        var r = run.Deserialize(LabJsonContext.Default.LabNodeRun) ?? throw new JsonException("a node run is JSON null");
        return new NodeStateRecord
        {
            Node = r.Name,
            Position = position,
            Status = r.Status,
            Attempt = r.Attempt,
            StartedAt = r.StartedAt,
            EndedAt = r.EndedAt,
            DurationMs = r.DurationMs,
            Output = r.Output,
            Metrics = r.Metrics is { ValueKind: JsonValueKind.Object } m ? m.GetRawText() : null,
            Run = run.GetRawText(),
            ErrorCode = r.Error?.Code,
            ErrorMessage = r.Error?.Message,
        };
    }

    /// <summary>
    /// A custom graph as its owner has it registered now (its existence was checked at submit; a replaced graph applies to a run
    /// resumed later). A graph deleted meanwhile fails the run with <c>graph_not_found</c>.
    /// </summary>
    private async Task<JsonElement?> LoadGraphAsync(string owner, ExecutionRequest request, CancellationToken ct)
    {
        if (request.Graph is not { } name)
            return null;
        // Among the graphs of the execution's owner, as at submit: never another subject's graph of the same name.
        var registered = await graphs.FindAsync(owner, name, ct).ConfigureAwait(false)
            ?? throw new LabServiceProblemException(StatusCodes.Status404NotFound, "graph_not_found", "Graph not found",
                $"The graph '{name}' was deleted after this execution was submitted; register it again with POST /api/v1/graphs.",
                new Dictionary<string, JsonElement>(), null);
        return JsonDocument.Parse(registered.Definition).RootElement.Clone();
    }

    private static OrchestrateRequest ToLabRequest(ExecutionRequest request, IReadOnlyList<string> previous, JsonElement? graph)
    {
        var p = request.Parameters;
        return new OrchestrateRequest
        {
            Prompt = request.Prompt!,
            Model = string.IsNullOrWhiteSpace(request.Model) ? null : request.Model.Trim(),
            Agents = request.Agents,
            Tools = request.Tools,
            Parameters = p is null ? null : new OrchestrateParameters
            {
                Temperature = p.Temperature,
                MaxTokens = p.MaxTokens,
                NumCtx = p.NumCtx,
                Seed = p.Seed,
                TopP = p.TopP,
                TimeoutSeconds = p.TimeoutSeconds,
            },
            PreviousNodes = previous.Count == 0 ? null : previous.Select(json => JsonDocument.Parse(json).RootElement.Clone()).ToList(),
            Graph = graph,
        };
    }

    private sealed record OutcomeDraft(string Status, string? Code, string? Message, string Flow, double DurationMs,
        int ModelCalls, int PromptTokens, int CompletionTokens)
    {
        public string? Model { get; init; }
        public string? ModelServer { get; init; }
        public string? Output { get; init; }
        public double? TimeToFirstTokenMs { get; init; }

        public ExecutionOutcome ToOutcome() => new()
        {
            Status = Status,
            ErrorCode = Code,
            ErrorMessage = Message,
            Flow = Flow,
            Model = Model,
            ModelServer = ModelServer,
            Output = Output,
            DurationMs = DurationMs,
            TimeToFirstTokenMs = TimeToFirstTokenMs,
            PromptTokens = PromptTokens,
            CompletionTokens = CompletionTokens,
            ModelCalls = ModelCalls,
        };
    }
}
