using AgentLab.Backend.Data;
using AgentLab.Backend.Events;
using AgentLab.Backend.Lab;
using AgentLab.Backend.Security;
using AgentLab.Backend.Security.RateLimiting;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;

namespace AgentLab.Backend.Executions;

/// <summary><c>POST /api/v1/execute</c>, <c>GET /api/v1/executions/{id}</c> and <c>POST /api/v1/executions/{id}/cancel</c>.</summary>
public static class ExecutionsApi
{
    public static RouteGroupBuilder MapExecutionsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1").WithTags("Executions");

        group.MapPost("/execute", ExecuteAsync)
            .WithName("Execute")
            .WithSummary("Run a prompt")
            .WithDescription("Records the execution, then runs it (execution_type \"simple\": one model call; \"orchestrator\": the lab graph in LabService, persisted node by node) and answers with the stored result; with \"mode\": \"async\" or Prefer: respond-async, answers 202 with Location at once. Idempotency-Key makes a submit safe to repeat.")
            // Documented by a transformer, not .Accepts<T>(): Accepts metadata makes routing answer a wrong content
            // type with a bare 415 before the handler can explain it.
            .AddOpenApiOperationTransformer(DescribeRequestBodyAsync)
            .Produces<ExecutionResult>(StatusCodes.Status200OK)
            .Produces<ExecutionResult>(StatusCodes.Status202Accepted)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity)
            .ProducesProblem(StatusCodes.Status429TooManyRequests)
            .ProducesProblem(StatusCodes.Status502BadGateway)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .ProducesProblem(StatusCodes.Status504GatewayTimeout);

        group.MapGet("/executions/{id}", GetAsync)
            .WithName("GetExecution")
            .WithSummary("One execution with its flow, metrics and status")
            .Produces<ExecutionResult>(StatusCodes.Status200OK)
            .ProducesProblem(StatusCodes.Status404NotFound);

        group.MapPost("/executions/{id}/cancel", CancelAsync)
            .WithName("CancelExecution")
            .WithSummary("Cancel a queued or running execution")
            .WithDescription("Works on any replica: the execution ends cancelled at once (answered as GET answers it), and its run stops on whichever replica drives it (the LabService call is aborted). A sync caller waiting for it gets 409 cancelled. A finished execution answers 409 execution_finished.")
            .Produces<ExecutionResult>(StatusCodes.Status200OK)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);

        return group;
    }

    private static async Task DescribeRequestBodyAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken ct)
    {
        var schema = await context.GetOrCreateSchemaAsync(typeof(ExecutionRequest), null, ct);
        operation.RequestBody = new OpenApiRequestBody
        {
            Required = true,
            Content = new Dictionary<string, OpenApiMediaType> { ["application/json"] = new() { Schema = schema } },
        };
    }

    /// <summary>
    /// Reads and validates the body, records the execution, then runs it here and answers with the stored result
    /// (sync), or queues it and answers 202 with its <c>Location</c> (async). An <c>Idempotency-Key</c> already used
    /// with the same body answers with that execution instead of running it again.
    /// </summary>
    public static async Task<IResult> ExecuteAsync(
        HttpRequest request, ExecutionRunner runner, ExecutionStore store, ExecutionQueue queue, HeldExecutions held, Graphs.GraphStore graphs, DatabaseHealth databaseHealth,
        IOptions<ExecutionOptions> options, IOptions<LabServiceOptions> labOptions, Models.ModelContextLimits contextLimits, ILoggerFactory loggers, CancellationToken ct)
    {
        var (body, problem) = await ExecutionRequestReader.ReadAsync(request, options.Value, ct);
        if (problem is not null)
            return problem;
        var (key, badKey) = ReadIdempotencyKey(request.Headers);
        if (badKey is not null)
            return badKey;

        var caller = request.HttpContext.Caller();
        // A custom graph implies the orchestrator, and must be registered (among the caller's own graphs) before
        // anything is recorded.
        Graphs.GraphRecord? graph = null;
        if (body!.Graph is { } graphName)
        {
            body.ExecutionType = ExecutionKinds.Orchestrator;
            if ((graph = await graphs.FindAsync(caller.Subject, graphName, ct)) is null)
            {
                return Problems.Create(StatusCodes.Status404NotFound, "graph_not_found", "Graph not found",
                    $"No graph named '{graphName}' is registered. Register it with POST /api/v1/graphs; GET /api/v1/graphs lists them.");
            }
        }

        // Ollama would silently cut a prompt longer than the model's window: refuse it here, before it is recorded.
        if (await contextLimits.CheckAsync(body, graph, ct) is { } tooLong)
            return tooLong;

        var isAsync = (body!.Mode is { } mode && ExecutionRequestReader.IsOneOf(mode, [ExecutionKinds.Async])) || PrefersAsync(request.Headers["Prefer"]);
        // Executions are recorded before they run: with the database down (or not migrated yet), refuse at once
        // with 503 db_unavailable and Retry-After rather than wait out connection timeouts.
        await databaseHealth.WaitForMigrationStepAsync(DatabaseStartupWait, ct);
        databaseHealth.ThrowIfUnavailable();

        var record = runner.NewRecord(body, isAsync ? ExecutionKinds.Async : ExecutionKinds.Sync, key, caller.Subject);
        // The slot is taken before anything is written, so a full queue refuses without leaving a row behind.
        var reserved = isAsync && queue.TryReserve();
        if (isAsync && !reserved)
            return QueueFull(request.HttpContext, options.Value);

        ExecutionStore.Created created;
        try
        {
            created = await store.CreateAsync(record, ConcurrencyCap(request.HttpContext).MaxConcurrentExecutionsPerSubject, ct);
        }
        catch
        {
            if (reserved)
                queue.Release();
            throw;
        }

        if (created.CapReached)
        {
            if (reserved)
                queue.Release();
            return RateLimitingExtensions.TooManyExecutions(request.HttpContext, ConcurrencyCap(request.HttpContext), record.Owner, created.OwnerActive!.Value);
        }
        if (!created.IsNew)
        {
            if (reserved)
                queue.Release();
            var existing = created.Record;
            if (existing.RequestHash != record.RequestHash)
            {
                return Problems.Create(StatusCodes.Status422UnprocessableEntity, "idempotency_key_reused",
                    "The Idempotency-Key was used with another request",
                    $"Execution {existing.Id} was submitted with this Idempotency-Key and a different body. Use a new key " +
                    "for a new request, or send exactly the same request to get that execution back.",
                    [new("execution_id", existing.Id)]);
            }
            AgentLabExecution.SetCurrentId(existing.Id, existing.ExecutionType);
            return isAsync
                ? await AcceptedAsync(request.HttpContext, store, existing, ct)
                : await AnswerWhenFinishedAsync(store, existing, RunBound(labOptions.Value), ct);
        }

        AgentLabExecution.SetCurrentId(record.Id, record.ExecutionType);
        loggers.CreateLogger(typeof(ExecutionsApi)).ExecutionAccepted(record.Id, record.Mode, queue.Count);
        ContentCapture.PromptAccepted(request.HttpContext, record.Id, body.Prompt);   // only with Telemetry:CaptureContent
        held.Hold(record.Id);
        if (isAsync)
        {
            queue.Enqueue(record.Id, record.TraceParent);
            request.HttpContext.Response.Headers.Location = ExecutionResults.Self(record.Id);
            // The row as recorded: the worker may already be running it, but what was accepted is a queued execution.
            return TypedResults.Json(ExecutionResults.From(record, []), BackendJsonContext.Wire.ExecutionResult,
                statusCode: StatusCodes.Status202Accepted);
        }

        ExecutionRunner.RunOutcome run;
        try
        {
            run = await runner.RunAsync(record.Id, ExecutionRunner.WhenCancelled.Cancel, ct);
        }
        finally
        {
            held.Release(record.Id);
        }
        if (run.Failure is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(run.Failure);
        return await AnswerAsync(store, run.Record!, ct);
    }

    /// <summary>One execution with its flow, metrics and status; another subject's is not found (404, not 403).</summary>
    public static async Task<IResult> GetAsync(string id, HttpContext context, ExecutionStore store, CancellationToken ct)
    {
        if (!Guid.TryParse(id, out var executionId) || await store.FindAsync(executionId, ct) is not { } record
            || !context.Caller().CanSee(record.Owner))
            return NotFound(id);
        var nodes = await store.NodesAsync(executionId, ct);
        return TypedResults.Json(ExecutionResults.From(record, nodes), BackendJsonContext.Wire.ExecutionResult);
    }

    /// <summary>The reason a cancel request records (<c>error.message</c> of the cancelled execution).</summary>
    public const string CancelReason = "Cancelled by request.";

    /// <summary>
    /// Cancels a queued or running execution: the row moves to <c>cancelled</c> with its <c>execution_cancelled</c>
    /// event (the last one), then the run is stopped where it runs (here directly, elsewhere through Redis, or by the
    /// lease heartbeat when Redis is away). A queued execution never starts.
    /// </summary>
    public static async Task<IResult> CancelAsync(string id, HttpContext context, ExecutionStore store, CancelSignals signals, CancellationToken ct)
    {
        if (!Guid.TryParse(id, out var executionId))
            return NotFound(id);
        // Another subject's execution is not found, and nothing is done to it: checked before the cancel (the owner
        // never changes), so neither the cancel nor a 409 can tell it exists or how it stands.
        if (await store.FindAsync(executionId, ct) is not { } owned || !context.Caller().CanSee(owned.Owner))
            return NotFound(id);
        if (await store.CancelAsync(executionId, CancelReason, ct))
        {
            signals.Send(executionId);
            var cancelled = await store.FindAsync(executionId, CancellationToken.None);
            var nodes = await store.NodesAsync(executionId, CancellationToken.None);
            return TypedResults.Json(ExecutionResults.From(cancelled!, nodes), BackendJsonContext.Wire.ExecutionResult);
        }
        if (await store.FindAsync(executionId, ct) is not { } record)
            return NotFound(id);
        return Problems.Create(StatusCodes.Status409Conflict, "execution_finished", "The execution has already finished",
            $"Execution {executionId} already ended {record.Status}; only a queued or running execution can be cancelled. " +
            $"Read its result at {ExecutionResults.Self(executionId)}.",
            [new("execution_id", executionId), new("status", record.Status)]);
    }

    private static ProblemHttpResult NotFound(string id) =>
        Problems.Create(StatusCodes.Status404NotFound, "execution_not_found", "Execution not found",
            $"No execution has the id '{id}'. Ids are the execution_id of POST /api/v1/execute; GET /api/v1/history lists them. " +
            "Finished executions are deleted after the retention period.");

    private static async Task<IResult> AcceptedAsync(HttpContext context, ExecutionStore store, ExecutionRecord record, CancellationToken ct)
    {
        var current = await store.FindAsync(record.Id, ct) ?? record;
        var nodes = ExecutionStatus.IsTerminal(current.Status) ? await store.NodesAsync(record.Id, ct) : [];
        context.Response.Headers.Location = ExecutionResults.Self(record.Id);
        return TypedResults.Json(ExecutionResults.From(current, nodes), BackendJsonContext.Wire.ExecutionResult,
            statusCode: StatusCodes.Status202Accepted);
    }

    /// <summary>A finished execution as the sync caller gets it: 200 with the result, or the problem it ended with.</summary>
    private static async Task<IResult> AnswerAsync(ExecutionStore store, ExecutionRecord record, CancellationToken ct)
    {
        if (record.Status != ExecutionStatus.Completed)
            return ExecutionResults.ProblemFor(record);
        var nodes = await store.NodesAsync(record.Id, ct);
        return TypedResults.Json(ExecutionResults.From(record, nodes), BackendJsonContext.Wire.ExecutionResult);
    }

    /// <summary>
    /// A sync duplicate of an execution still queued or running (here or on another replica): waits for it to
    /// finish, reading the row, and answers as the first caller was answered.
    /// </summary>
    private static async Task<IResult> AnswerWhenFinishedAsync(ExecutionStore store, ExecutionRecord record, TimeSpan bound, CancellationToken ct)
    {
        var deadline = DateTimeOffset.UtcNow + bound;
        var current = record;
        while (!ExecutionStatus.IsTerminal(current.Status))
        {
            if (DateTimeOffset.UtcNow > deadline)
            {
                return Problems.Create(StatusCodes.Status504GatewayTimeout, "execution_still_running", "The execution is still running",
                    $"Execution {record.Id} (the one this Idempotency-Key started) has not finished within {bound.TotalSeconds:0} s. " +
                    $"Read it later at {ExecutionResults.Self(record.Id)}.", [new("execution_id", record.Id)]);
            }
            await Task.Delay(SyncPollInterval, ct);
            current = await store.FindAsync(record.Id, ct) ?? throw new InvalidOperationException($"Execution {record.Id} vanished while being waited for.");
        }
        return await AnswerAsync(store, current, ct);
    }

    /// <summary>The per-subject cap on queued + running executions (<c>RateLimits:MaxConcurrentExecutionsPerSubject</c>).</summary>
    private static RateLimitOptions ConcurrencyCap(HttpContext http) => http.RequestServices.GetRequiredService<IOptions<RateLimitOptions>>().Value;

    /// <summary>How long a request that arrives while the Backend is starting waits for the migration step.</summary>
    private static readonly TimeSpan DatabaseStartupWait = TimeSpan.FromSeconds(5);

    private static readonly TimeSpan SyncPollInterval = TimeSpan.FromMilliseconds(200);

    private static TimeSpan RunBound(LabServiceOptions lab) => TimeSpan.FromSeconds(lab.RequestTimeoutSeconds + lab.TimeoutGraceSeconds);

    private static IResult QueueFull(HttpContext context, ExecutionOptions options)
    {
        context.Response.Headers.RetryAfter = options.QueueFullRetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Problems.Create(StatusCodes.Status429TooManyRequests, "queue_full", "Too many executions are waiting",
            $"This Backend already has {options.QueueCapacity} asynchronous executions waiting to run (Execution:QueueCapacity). " +
            $"Retry after {options.QueueFullRetryAfterSeconds} s, or run it synchronously.");
    }

    /// <summary>The <c>Idempotency-Key</c> header: absent, or 1–255 visible ASCII characters.</summary>
    public static (string? Key, ProblemHttpResult? Problem) ReadIdempotencyKey(IHeaderDictionary headers)
    {
        var values = headers["Idempotency-Key"];
        if (values.Count == 0)
            return (null, null);
        var key = values.Count == 1 ? values[0]?.Trim() : null;
        if (string.IsNullOrEmpty(key) || key.Length > 255 || key.Any(c => c < '!' || c > '~'))
        {
            return (null, Problems.Create(StatusCodes.Status400BadRequest, "invalid_idempotency_key", "The Idempotency-Key header is not valid",
                "Send one Idempotency-Key header of 1 to 255 visible ASCII characters (a UUID is a good choice)."));
        }
        return (key, null);
    }

    public static bool PrefersAsync(Microsoft.Extensions.Primitives.StringValues prefer)
    {
        foreach (var header in prefer)
        {
            foreach (var preference in (header ?? "").Split(','))
            {
                var token = preference.Split(';')[0].Trim();
                if (token.Equals("respond-async", StringComparison.OrdinalIgnoreCase))
                    return true;
            }
        }
        return false;
    }
}
