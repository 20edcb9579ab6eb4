using System.Diagnostics;
using System.Text.Json;
using AgentLab.LabService.Inference;
using AgentLab.LabService.Models;
using AgentLab.LabService.Orchestration.LabGraph;
using AgentLab.LabService.Orchestration.Runtime;
using AgentLab.ServiceDefaults;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace AgentLab.LabService.Orchestration;

/// <summary>
/// <c>POST /orchestrate/</c>: runs the lab graph, answered as one JSON document or streamed as NDJSON events
/// (<c>node_started</c>, <c>token</c>, <c>node_completed</c>, <c>node_failed</c>, <c>log</c>, then <c>completed</c> or <c>error</c>).
/// </summary>
public static class OrchestrateApi
{
    private const string ToolsCapability = "tools";
    private const string CompletionCapability = "completion";

    public static RouteGroupBuilder MapOrchestrateApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/orchestrate").WithTags("Orchestration");
        group.MapPost("/", OrchestrateAsync).WithName("Orchestrate");
        group.MapGet("/", DescribeAsync).WithName("DescribeOrchestrator");
        return group;
    }

    public static async Task<IResult> OrchestrateAsync(HttpContext context, ModelManager models, IChatClient chat,
        LabGraphFactory factory, ILabToolProvider toolProvider, IOptions<LabOptions> labOptions,
        IOptions<OrchestrationOptions> options, ILogger<OrchestrateRequest> logger)
    {
        // RequestAborted: a client that disconnects cancels the run and the model call in flight.
        var ct = context.RequestAborted;
        if (!context.Request.HasJsonContentType())
        {
            return Problems.Create(StatusCodes.Status415UnsupportedMediaType, "unsupported_media_type", "Unsupported media type",
                "Send the request body as JSON with 'Content-Type: application/json'.");
        }

        OrchestrateRequest? request;
        try
        {
            request = await context.Request.ReadFromJsonAsync(LabJsonContext.Default.OrchestrateRequest, ct);
        }
        catch (JsonException ex)
        {
            var path = ex.Path ?? "$";
            return Problems.Create(StatusCodes.Status400BadRequest, "invalid_json", "The request body is not valid JSON",
                $"The JSON at '{path}' could not be read. Send an object like " +
                "{\"prompt\": \"...\", \"model\": \"mistral7b\", \"agents\": [\"analyzer\", \"executor\", \"validator\", \"monitor\"]}.",
                [new("json_path", path)]);
        }

        if (Validate(request, labOptions.Value, options.Value) is { } errors)
        {
            return TypedResults.ValidationProblem(errors, "The request has invalid fields; see 'errors' for each one.",
                title: "Invalid orchestration request",
                extensions: new Dictionary<string, object?> { [Problems.CodeKey] = "validation_failed" });
        }

        IReadOnlyList<AITool> tools;
        try
        {
            LabGraphFactory.ResolveAgents(request!.Agents);
            tools = toolProvider.Resolve(request.Tools ?? []);
        }
        catch (LabGraphRequestException ex)
        {
            return Problems.Create(StatusCodes.Status400BadRequest, ex.Code, "Invalid agents", ex.Message,
                [new("known_agents", LabWorkers.All)]);
        }
        catch (UnknownToolException ex)
        {
            return Problems.Create(StatusCodes.Status400BadRequest, "unknown_tool", "Unknown tool", ex.Message,
                [new("unknown_tools", ex.Unknown), new("known_tools", ex.Known)]);
        }

        // Unknown model or an unreachable server fail here, before the run: plain ProblemDetails via LabExceptionHandler.
        var model = await models.ResolveAsync(request.Model, ct);
        if (tools.Count > 0 && model.Capabilities.Count > 0 && !model.Capabilities.Contains(ToolsCapability))
            throw new ModelNotCapableException(model, ToolsCapability);
        var server = await models.GetServerAsync(ct);

        var p = request.Parameters;
        var settings = new LabGraphSettings
        {
            Model = model.Name,
            Agents = request.Agents,
            Temperature = (float?)p?.Temperature,
            MaxTokens = p?.MaxTokens,
            NumCtx = p?.NumCtx,
            Seed = p?.Seed,
            MaxIterations = p?.MaxIterations ?? LabGraphSettings.DefaultMaxIterations,
        };
        var (graph, observers) = factory.Build(settings, tools);
        var o = options.Value;
        var runOptions = new GraphRunOptions
        {
            MaxSteps = p?.MaxSteps ?? o.MaxSteps,
            Budget = new RunBudget(p?.MaxModelCalls ?? o.MaxModelCalls, p?.MaxTotalTokens,
                TimeSpan.FromSeconds(p?.TimeoutSeconds ?? o.WallTimeSeconds)),
            Observers = observers,
            PreviousNodes = request.PreviousNodes,
        };
        var runner = new GraphRunner(chat);
        var events = runner.RunAsync(graph, GraphState.Initial(request.Prompt!), runOptions, ct);

        if (WantsNdjson(context.Request))
        {
            await StreamAsync(context, events, model.Name, server.Kind, logger, ct);
            return Results.Empty;
        }

        GraphRunResult? result = null;
        await foreach (var e in events)
        {
            if (e is RunCompletedEvent done)
                result = done.Result;
        }
        ct.ThrowIfCancellationRequested();
        var response = ToResponse(result!, model.Name, server.Kind);
        logger.OrchestrationFinished(graph.Name, result!.StopReason.Code, result.Flow.Nodes.Count, result.Metrics.TotalDurationMs);
        if (MapFailure(result) is { } error)
        {
            // The run failed the way a single model call fails (server down, busy, timeout): same status and code,
            // with what ran so far so the caller can continue with previous_nodes.
            return Problems.Create(error.Status, error.Code, error.Title, result.StopReason.Message,
                [.. error.Extensions ?? [], new("stop_reason", response.StopReason), new("flow", response.Flow)]);
        }
        return TypedResults.Json(response, LabJsonContext.Wire.OrchestrateResponse);
    }

    /// <summary>
    /// The graph, each worker's readiness and whether the model (<c>?model=</c>, default the configured one) is
    /// available with what the workers need. Reads the model list only; never generates.
    /// </summary>
    public static async Task<IResult> DescribeAsync(string? model, ModelManager models, LabGraphFactory factory,
        ILabToolProvider toolProvider, CancellationToken ct)
    {
        var requested = string.IsNullOrWhiteSpace(model) ? models.DefaultModel : model.Trim();
        var (graph, _) = factory.Build(new LabGraphSettings { Model = models.ResolveAlias(requested) }, []);
        var server = new ModelServerStatus();
        var fitness = new ModelFitness { Requested = requested };
        try
        {
            var info = await models.GetServerAsync(ct);
            (server.Reachable, server.Kind, server.Version) = (true, info.Kind, info.Version);
            var resolved = await models.ResolveAsync(requested, ct);
            fitness.Name = resolved.Name;
            fitness.Available = true;
            fitness.Loaded = resolved.Loaded;
            fitness.Capabilities = [.. resolved.Capabilities];
            // An empty list means an Ollama too old to report capabilities: assume completion, as /inference/ does.
            fitness.Completion = resolved.Capabilities.Count == 0 || resolved.Capabilities.Contains(CompletionCapability);
            fitness.Tools = resolved.Capabilities.Contains(ToolsCapability);
            // Ollama constrains any generating model's output with 'format'.
            fitness.JsonFormat = fitness.Completion;
        }
        catch (Exception ex) when (LabExceptionHandler.TryMap(ex) is { } error)
        {
            if (!server.Reachable)
                server.Reason = error.Detail;
            fitness.Reason = error.Detail;
        }

        var tools = toolProvider.Names.ToList();
        var workers = LabWorkers.All.Select(name => Worker(name, factory.Prompts, fitness, tools.Count > 0)).ToList();
        return TypedResults.Json(new OrchestratorInfo
        {
            Graph = new GraphInfo
            {
                Name = graph.Name,
                Entry = graph.Entry,
                Nodes = [.. graph.Nodes.Keys, LabWorkers.Monitor],
                Edges = [.. graph.Edges.Select(e => new EdgeInfo { From = e.From, To = e.To, Label = e.Label, Conditional = e.IsConditional })],
                DefaultMaxIterations = LabGraphSettings.DefaultMaxIterations,
            },
            Workers = workers,
            Model = fitness,
            ModelServer = server,
            Tools = tools,
            Ready = workers.All(w => w.Ready),
        }, LabJsonContext.Wire.OrchestratorInfo);
    }

    private static WorkerInfo Worker(string name, PromptLibrary prompts, ModelFitness model, bool toolsConfigured)
    {
        if (name == LabWorkers.Monitor)
            return new WorkerInfo { Name = name, Ready = true, Needs = [] };   // observes the run; makes no model calls
        List<string> needs = [CompletionCapability];
        if (name == LabWorkers.Validator)
            needs.Add("json_format");
        if (name == LabWorkers.Executor && toolsConfigured)
            needs.Add(ToolsCapability);
        string? version = null;
        string? reason = null;
        try
        {
            version = prompts.Get(name).Version;
        }
        catch (InvalidOperationException ex)
        {
            reason = ex.Message;
        }
        reason ??= !model.Available ? $"model '{model.Requested}' is not available: {model.Reason}"
            : !model.Completion ? $"model '{model.Name}' cannot generate text"
            : needs.Contains(ToolsCapability) && !model.Tools ? $"model '{model.Name}' does not support tools; the executor can run without them"
            : null;
        // Tools are optional for the executor: a model without them only limits requests that ask for tools.
        var ready = version is not null && model.Available && model.Completion;
        return new WorkerInfo { Name = name, Ready = ready, PromptVersion = version, Needs = needs, Reason = reason };
    }

    private static async Task StreamAsync(HttpContext context, IAsyncEnumerable<GraphEvent> events, string model,
        string modelServer, ILogger logger, CancellationToken ct)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = InferenceApi.NdjsonContentType;
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        var writer = new NdjsonWriter(response.BodyWriter);
        var wire = LabJsonContext.Wire;
        await foreach (var e in events)
        {
            switch (e)
            {
                case NodeStartedEvent started: await writer.WriteAsync(started, wire.NodeStartedEvent, ct); break;
                case TokenEvent token: await writer.WriteAsync(token, wire.TokenEvent, ct); break;
                case NodeCompletedEvent completed: await writer.WriteAsync(completed, wire.NodeCompletedEvent, ct); break;
                case NodeFailedEvent failed: await writer.WriteAsync(failed, wire.NodeFailedEvent, ct); break;
                case LogEvent log: await writer.WriteAsync(log, wire.LogEvent, ct); break;
                case RunCompletedEvent done:
                    var answer = ToResponse(done.Result, model, modelServer);
                    logger.OrchestrationFinished(done.Result.Graph, done.Result.StopReason.Code, done.Result.Flow.Nodes.Count,
                        done.Result.Metrics.TotalDurationMs);
                    // The run's last event keeps its seq: the stream stays gap-free.
                    if (MapFailure(done.Result) is { } error)
                    {
                        await writer.WriteAsync(new OrchestrateErrorEvent
                        {
                            Seq = done.Seq,
                            Error = new InferenceError { Code = error.Code, Message = done.Result.StopReason.Message, Status = error.Status },
                            Data = answer,
                        }, wire.OrchestrateErrorEvent, ct);
                    }
                    else
                        await writer.WriteAsync(new OrchestrateCompletedEvent { Seq = done.Seq, Data = answer }, wire.OrchestrateCompletedEvent, ct);
                    break;
            }
        }
    }

    /// <summary>A run that stopped because a node failed with a known model-server error maps like <c>/inference/</c>.</summary>
    private static LabError? MapFailure(GraphRunResult result) =>
        result.StopReason is { Code: StopCodes.NodeFailed, Error: { } ex }
            ? LabExceptionHandler.TryMap(ex) ?? new LabError(StatusCodes.Status502BadGateway, "node_failed", "A graph node failed",
                result.StopReason.Message)
            : null;

    private static OrchestrateResponse ToResponse(GraphRunResult result, string model, string modelServer) => new()
    {
        Output = result.Output,
        Model = model,
        ModelServer = modelServer,
        Flow = result.Flow,
        Metrics = result.Metrics,
        StopReason = result.StopReason,
        Report = result.Report,
    };

    private static bool WantsNdjson(HttpRequest request) =>
        request.Headers.Accept.Any(v => v is not null && v.Contains(InferenceApi.NdjsonContentType, StringComparison.OrdinalIgnoreCase));

    /// <summary>Field errors keyed by JSON name, or null when the request is valid.</summary>
    public static Dictionary<string, string[]>? Validate(OrchestrateRequest? request, LabOptions lab, OrchestrationOptions options)
    {
        if (request is null)
            return new() { ["$"] = ["The body must be a JSON object with at least a 'prompt'."] };

        var errors = InferenceApi.Validate(new InferenceRequest
        {
            Prompt = request.Prompt, Model = request.Model, Parameters = request.Parameters?.ToInference(),
        }, lab);
        void Add(string field, string message) => (errors ??= [])[field] = [message];

        if (request.Parameters is { } p)
        {
            if (p.MaxIterations is { } iterations && (iterations < 0 || iterations > options.MaxIterationsLimit))
                Add("parameters.max_iterations", $"'max_iterations' must be between 0 and {options.MaxIterationsLimit}.");
            if (p.MaxSteps is { } steps && (steps < 1 || steps > 1000))
                Add("parameters.max_steps", "'max_steps' must be between 1 and 1000.");
            if (p.MaxModelCalls is <= 0)
                Add("parameters.max_model_calls", "'max_model_calls' must be greater than 0.");
            if (p.MaxTotalTokens is <= 0)
                Add("parameters.max_total_tokens", "'max_total_tokens' must be greater than 0.");
        }
        if (request.Agents is { } agents && agents.Any(string.IsNullOrWhiteSpace))
            Add("agents", "'agents' must be worker names such as 'analyzer', 'executor', 'validator', 'monitor'.");
        if (request.Tools is { } tools && tools.Any(string.IsNullOrWhiteSpace))
            Add("tools", "'tools' must be tool names.");
        if (request.PreviousNodes is { } previous)
        {
            for (var i = 0; i < previous.Count; i++)
            {
                if (string.IsNullOrWhiteSpace(previous[i].Name) || !LabWorkers.All.Contains(previous[i].Name))
                    Add($"previous_nodes[{i}].name", $"'name' must be a node of the lab graph ({string.Join(", ", LabWorkers.All)}).");
                else if (previous[i].Status == NodeRun.CompletedStatus && previous[i].Output is null)
                    Add($"previous_nodes[{i}].output", "A completed node needs its 'output' to be restored.");
            }
        }
        return errors;
    }
}
