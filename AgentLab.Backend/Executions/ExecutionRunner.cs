using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using AgentLab.Backend.Data;
using AgentLab.Backend.Events;
using AgentLab.Backend.Lab;
using AgentLab.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Executions;

/// <summary>
/// Records executions and runs them. Every execution is written (queued, leased by this replica) before anything
/// runs; a run starts with a conditional <c>→ running</c>, makes the model call through LabService (its NDJSON
/// stream: each event is stored and published as it arrives, through the run's <see cref="EventJournal"/>), and ends
/// with one transaction that writes the outcome, the node states and the terminal event. The HTTP handler only reads,
/// validates and answers; the background worker and the sweeper call the same <see cref="RunAsync"/>. A run is
/// registered in <see cref="RunningExecutions"/> while it goes, so a cancel request stops it.
/// </summary>
public sealed class ExecutionRunner(
    ExecutionStore store,
    LabServiceClient lab,
    OrchestratorRunner orchestrator,
    EventJournals journals,
    RunningExecutions running,
    IOptions<LabServiceOptions> labOptions,
    IOptions<ExecutionOptions> options,
    ReplicaIdentity replica,
    TimeProvider time,
    ILogger<ExecutionRunner> logger)
{
    private const string InferenceNode = "inference";

    /// <summary>What to do when the run's token fires before it finished.</summary>
    public enum WhenCancelled
    {
        /// <summary>The caller left (a sync client disconnected): the execution ends <c>cancelled</c>.</summary>
        Cancel,

        /// <summary>This replica is stopping: leave it unfinished; its lease lapses and another replica takes it over.</summary>
        Abandon,
    }

    /// <summary>A run's end: the stored row, and the failure to answer with when the caller waits for it.</summary>
    public sealed record RunOutcome(ExecutionRecord? Record, Exception? Failure);

    /// <summary>
    /// What a started run works with: its journal, its registration, and <see cref="Token"/>, which fires when the
    /// caller's token does, when a cancel request or the heartbeat stops the run, or when the journal can no longer
    /// write (the row is no longer this replica's, or the database failed).
    /// </summary>
    public sealed record RunContext(EventJournal Journal, RunningExecutions.Run Registration, CancellationToken Token)
    {
        /// <summary>True when the run was stopped by something other than its caller: its row is no longer this replica's.</summary>
        public bool StoppedFromOutside => Registration.IsStoppedFromOutside || Journal.IsLeaseLost;
    }

    /// <summary>A new queued execution held by this replica; <paramref name="mode"/> is the effective sync/async.</summary>
    public ExecutionRecord NewRecord(ExecutionRequest request, string mode, string? idempotencyKey, string owner)
    {
        request.ExecutionType ??= ExecutionKinds.Simple;
        // The mode is how the caller waits, not what it asks for: a sync retry of an async submit is the same request.
        request.Mode = null;
        var hashed = JsonSerializer.Serialize(request, BackendJsonContext.Wire.ExecutionRequest);
        request.Mode = mode;
        var json = JsonSerializer.Serialize(request, BackendJsonContext.Wire.ExecutionRequest);
        var now = time.GetUtcNow();
        return new ExecutionRecord
        {
            Id = Guid.CreateVersion7(now),
            Owner = owner,
            ExecutionType = request.ExecutionType,
            Mode = mode,
            Model = string.IsNullOrWhiteSpace(request.Model) ? null : request.Model.Trim(),
            Status = ExecutionStatus.Queued,
            Request = json,
            // The normalised request, not the raw bytes: the same request with other whitespace or key order is "the same body".
            RequestHash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(hashed))),
            IdempotencyKey = idempotencyKey,
            CreatedAt = now,
            LeaseOwner = replica.Id,
            LeaseExpiresAt = now + Lease,
            TraceParent = Activity.Current?.Id,
        };
    }

    private TimeSpan Lease => TimeSpan.FromSeconds(options.Value.LeaseSeconds);

    /// <summary>
    /// Runs an execution this replica holds: <c>→ running</c>, the model call, then the outcome in one transaction.
    /// When the execution is no longer this replica's to run (cancelled, finished, taken over), runs nothing and
    /// returns the row as it stands.
    /// </summary>
    public async Task<RunOutcome> RunAsync(Guid id, WhenCancelled whenCancelled, CancellationToken ct)
    {
        var start = await store.TryStartRunAsync(id, replica.Id, Lease, ct).ConfigureAwait(false);
        if (start is null)
            return new RunOutcome(await store.FindAsync(id, ct).ConfigureAwait(false), null);
        var record = start.Record;

        // Travels as baggage to LabService and from there to every model call, and tags this run's spans and logs.
        AgentLabExecution.SetCurrentId(id, record.ExecutionType);
        var request = JsonSerializer.Deserialize(record.Request, BackendJsonContext.Wire.ExecutionRequest)
            ?? throw new InvalidDataException($"Execution {id} has no stored request.");

        using var registration = running.Register(id, ct);
        await using var journal = journals.Start(id, replica.Id, start.LastSeq);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(registration.Token, journal.Stopped);
        var run = new RunContext(journal, registration, stop.Token);
        if (record.ExecutionType == ExecutionKinds.Orchestrator)
            return await orchestrator.RunAsync(record, request, whenCancelled, run, ct).ConfigureAwait(false);
        var startedAt = time.GetUtcNow();
        var started = time.GetTimestamp();

        ExecutionOutcome outcome;
        NodeStateRecord node;
        Exception? failure = null;
        try
        {
            var answer = await StreamAsync(record, request, journal, run.Token).ConfigureAwait(false);
            var durationMs = Math.Round(time.GetElapsedTime(started).TotalMilliseconds, 3);
            (outcome, node) = Completed(answer, startedAt, durationMs, record.Attempt);
            await journal.AppendAsync(EventTypes.NodeCompleted, InferenceNode, EventData.Of(w =>
            {
                w.WriteNumber("attempt", record.Attempt);
                w.WriteNumber("duration_ms", durationMs);
                w.WriteString("model", answer.Model);
                w.WriteString("model_server", answer.ModelServer);
                w.WriteString("done_reason", answer.DoneReason);
                if (answer.Metrics is { } metrics)
                {
                    w.WritePropertyName("metrics");
                    JsonSerializer.Serialize(w, metrics, LabJsonContext.Default.InferenceMetrics);
                }
            }), run.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested && whenCancelled == WhenCancelled.Abandon)
        {
            // Stopping: the lease is released on shutdown, and the sweeper of a live replica runs it again.
            throw;
        }
        catch (Exception ex) when (ex is LabServiceException || (ex is OperationCanceledException && run.Token.IsCancellationRequested))
        {
            failure = ex;
            var durationMs = Math.Round(time.GetElapsedTime(started).TotalMilliseconds, 3);
            (outcome, node) = Failed(ex, startedAt, durationMs, record.Attempt);
            if (ex is LabServiceException lse)
                lse.ExecutionId ??= id;
            if (!run.StoppedFromOutside)
            {
                await journal.AppendAsync(EventTypes.NodeFailed, InferenceNode, EventData.Of(w =>
                {
                    w.WriteString("code", node.ErrorCode);
                    w.WriteString("message", node.ErrorMessage);
                    w.WriteNumber("attempt", record.Attempt);
                }), CancellationToken.None).ConfigureAwait(false);
            }
        }

        // Every event of the run is stored before its terminal event; a database failure here ends the run as one
        // elsewhere does (it is taken over when its lease lapses).
        await journal.CompleteAsync().ConfigureAwait(false);

        // The outcome is written even when the caller left: the run happened, and the record must say how it ended.
        var written = await store.FinishAsync(id, replica.Id, outcome, [node], CancellationToken.None).ConfigureAwait(false);
        var stored = await store.FindAsync(id, CancellationToken.None).ConfigureAwait(false);
        if (!written)
            return Discarded(logger, id, outcome.Status, stored);

        if (outcome.Status == ExecutionStatus.Completed)
        {
            // The one Information line per execution; no prompt or output text.
            logger.ExecutionCompleted(id, record.ExecutionType, outcome.Model ?? "(default)", outcome.ModelServer ?? "unknown",
                outcome.DurationMs ?? 0, outcome.PromptTokens ?? 0, outcome.CompletionTokens ?? 0);
        }
        else
        {
            logger.ExecutionEnded(id, outcome.Status, outcome.ErrorCode ?? "");
        }
        return new RunOutcome(stored, failure);
    }

    /// <summary>
    /// Someone else moved the execution meanwhile (a cancel, or a sweeper that decided this replica was gone): theirs
    /// stands. A cancel is expected and said once at Information; anything else is worth a warning.
    /// </summary>
    internal static RunOutcome Discarded(ILogger logger, Guid id, string outcome, ExecutionRecord? stored)
    {
        if (stored?.Status == ExecutionStatus.Cancelled)
            logger.ExecutionCancelledByRequest(id, outcome);
        else
            logger.ExecutionOutcomeDiscarded(id, outcome, stored?.Status ?? "(deleted)");
        return new RunOutcome(stored, null);
    }

    /// <summary>
    /// The model call through LabService's NDJSON stream: <c>node_started</c>, the tokens and (by the caller)
    /// <c>node_completed</c> go to the journal as they come. A plain JSON answer is journaled the same way, its whole
    /// output as one token chunk.
    /// </summary>
    private async Task<InferenceResponse> StreamAsync(ExecutionRecord record, ExecutionRequest request, EventJournal journal, CancellationToken ct)
    {
        InferenceResponse? answer = null;
        var started = false;
        await foreach (var e in lab.StreamInferenceAsync(ToInferenceRequest(request), TimeoutFor(request), ct).ConfigureAwait(false))
        {
            switch (e.Type)
            {
                case InferenceStreamEvent.StartedType:
                    await journal.AppendAsync(EventTypes.NodeStarted, InferenceNode, StartedData(record.Attempt, e.Model, e.ModelServer), ct).ConfigureAwait(false);
                    started = true;
                    break;
                case InferenceStreamEvent.TokenType when e.Content is { Length: > 0 } text:
                    await journal.TokenAsync(InferenceNode, text, ct).ConfigureAwait(false);
                    break;
                case InferenceStreamEvent.CompletedType:
                    answer = e.Result;
                    break;
            }
        }
        if (answer is null)
            throw new LabServiceUnavailableException("the inference stream ended without an answer");
        if (!started)
        {
            await journal.AppendAsync(EventTypes.NodeStarted, InferenceNode, StartedData(record.Attempt, answer.Model, answer.ModelServer), ct).ConfigureAwait(false);
            await journal.TokenAsync(InferenceNode, answer.Output ?? "", ct).ConfigureAwait(false);
        }
        return answer;
    }

    private static string StartedData(int attempt, string? model, string? modelServer) => EventData.Of(w =>
    {
        w.WriteNumber("attempt", attempt);
        if (model is not null)
            w.WriteString("model", model);
        if (modelServer is not null)
            w.WriteString("model_server", modelServer);
    });

    private static (ExecutionOutcome, NodeStateRecord) Completed(InferenceResponse answer, DateTimeOffset startedAt, double durationMs, int attempt)
    {
        var m = answer.Metrics;
        var outcome = new ExecutionOutcome
        {
            Status = ExecutionStatus.Completed,
            Model = answer.Model,
            ModelServer = answer.ModelServer,
            Output = answer.Output,
            Flow = ExecutionResults.FlowJson([], 1),
            DurationMs = durationMs,
            TimeToFirstTokenMs = m?.TimeToFirstTokenMs,
            LoadDurationMs = m?.LoadDurationMs,
            PromptTokens = m?.PromptTokens,
            CompletionTokens = m?.CompletionTokens,
            TokensPerSecond = m?.TokensPerSecond,
            ModelCalls = 1,
        };
        var node = new NodeStateRecord
        {
            Node = InferenceNode,
            Position = 0,
            Status = ExecutionStatus.Completed,
            Attempt = attempt,
            StartedAt = startedAt,
            EndedAt = startedAt + TimeSpan.FromMilliseconds(durationMs),
            DurationMs = durationMs,
            Output = answer.Output,
            Metrics = m is null ? null : JsonSerializer.Serialize(m, LabJsonContext.Default.InferenceMetrics),
        };
        return (outcome, node);
    }

    private static (ExecutionOutcome, NodeStateRecord) Failed(Exception ex, DateTimeOffset startedAt, double durationMs, int attempt)
    {
        var (status, code, message) = ex switch
        {
            LabServiceProblemException { Status: StatusCodes.Status504GatewayTimeout } p => (ExecutionStatus.TimedOut, p.Code, p.Detail ?? p.Title),
            LabServiceProblemException p => (ExecutionStatus.Failed, p.Code, p.Detail ?? p.Title),
            LabServiceTimeoutException t => (ExecutionStatus.TimedOut, "lab_timeout", t.Message),
            LabServiceUnavailableException u => (ExecutionStatus.Failed, "lab_unavailable", u.Message),
            _ => (ExecutionStatus.Cancelled, "client_disconnected", "The client that submitted this synchronous execution disconnected before it finished; the model call was stopped."),
        };
        var outcome = new ExecutionOutcome
        {
            Status = status,
            ErrorCode = code,
            ErrorMessage = message,
            Flow = ExecutionResults.FlowJson([], 1),
            DurationMs = durationMs,
            ModelCalls = 1,
        };
        var node = new NodeStateRecord
        {
            Node = InferenceNode,
            Position = 0,
            Status = status,
            Attempt = attempt,
            StartedAt = startedAt,
            EndedAt = startedAt + TimeSpan.FromMilliseconds(durationMs),
            DurationMs = durationMs,
            ErrorCode = code,
            ErrorMessage = message,
        };
        return (outcome, node);
    }

    private TimeSpan TimeoutFor(ExecutionRequest request)
    {
        var lab = labOptions.Value;
        return request.Parameters?.TimeoutSeconds is { } seconds
            ? TimeSpan.FromSeconds(seconds + lab.TimeoutGraceSeconds)
            : TimeSpan.FromSeconds(lab.RequestTimeoutSeconds);
    }

    private static InferenceRequest ToInferenceRequest(ExecutionRequest request)
    {
        var p = request.Parameters;
        return new InferenceRequest
        {
            Prompt = request.Prompt!,
            Model = string.IsNullOrWhiteSpace(request.Model) ? null : request.Model.Trim(),
            System = p?.System,
            Parameters = p is null ? null : new InferenceParameters
            {
                Temperature = p.Temperature,
                MaxTokens = p.MaxTokens,
                NumCtx = p.NumCtx,
                Seed = p.Seed,
                TopP = p.TopP,
                TimeoutSeconds = p.TimeoutSeconds,
            },
        };
    }
}
