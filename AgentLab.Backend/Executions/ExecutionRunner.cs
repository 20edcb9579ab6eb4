using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using AgentLab.Backend.Data;
using AgentLab.Backend.Lab;
using AgentLab.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Executions;

/// <summary>
/// Records executions and runs them. Every execution is written (queued, leased by this replica) before anything
/// runs; a run starts with a conditional <c>→ running</c>, makes the model call through LabService, and ends with
/// one transaction that writes the outcome, the node states and the terminal event. The HTTP handler only reads,
/// validates and answers; the background worker and the sweeper call the same <see cref="RunAsync"/>.
/// </summary>
public sealed class ExecutionRunner(
    ExecutionStore store,
    LabServiceClient lab,
    OrchestratorRunner orchestrator,
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

    /// <summary>A new queued execution held by this replica; <paramref name="mode"/> is the effective sync/async.</summary>
    public ExecutionRecord NewRecord(ExecutionRequest request, string mode, string? idempotencyKey)
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
        var record = await store.TryStartAsync(id, replica.Id, Lease, ct).ConfigureAwait(false);
        if (record is null)
            return new RunOutcome(await store.FindAsync(id, ct).ConfigureAwait(false), null);

        // Travels as baggage to LabService and from there to every model call, and tags this run's spans and logs.
        AgentLabExecution.SetCurrentId(id);
        var request = JsonSerializer.Deserialize(record.Request, BackendJsonContext.Wire.ExecutionRequest)
            ?? throw new InvalidDataException($"Execution {id} has no stored request.");
        if (record.ExecutionType == ExecutionKinds.Orchestrator)
            return await orchestrator.RunAsync(record, request, whenCancelled, ct).ConfigureAwait(false);
        var startedAt = time.GetUtcNow();
        var started = time.GetTimestamp();

        ExecutionOutcome outcome;
        NodeStateRecord node;
        Exception? failure = null;
        try
        {
            var answer = await lab.InferAsync(ToInferenceRequest(request), TimeoutFor(request), ct).ConfigureAwait(false);
            var durationMs = Math.Round(time.GetElapsedTime(started).TotalMilliseconds, 3);
            (outcome, node) = Completed(answer, startedAt, durationMs, record.Attempt);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested && whenCancelled == WhenCancelled.Abandon)
        {
            // Stopping: the lease is released on shutdown, and the sweeper of a live replica runs it again.
            throw;
        }
        catch (Exception ex) when (ex is LabServiceException || (ex is OperationCanceledException && ct.IsCancellationRequested))
        {
            failure = ex;
            var durationMs = Math.Round(time.GetElapsedTime(started).TotalMilliseconds, 3);
            (outcome, node) = Failed(ex, startedAt, durationMs, record.Attempt);
            if (ex is LabServiceException lse)
                lse.ExecutionId ??= id;
        }

        // The outcome is written even when the caller left: the run happened, and the record must say how it ended.
        var written = await store.FinishAsync(id, replica.Id, outcome, [node], CancellationToken.None).ConfigureAwait(false);
        var stored = await store.FindAsync(id, CancellationToken.None).ConfigureAwait(false);
        if (!written)
        {
            // Someone else moved it meanwhile (cancelled, or a sweeper decided this replica was gone): theirs stands.
            logger.ExecutionOutcomeDiscarded(id, outcome.Status, stored?.Status ?? "(deleted)");
            return new RunOutcome(stored, null);
        }

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
