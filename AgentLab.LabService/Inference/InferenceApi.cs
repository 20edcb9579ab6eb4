using System.Diagnostics;
using System.IO.Pipelines;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using AgentLab.LabService.Models;
using AgentLab.LabService.Ollama;
using AgentLab.ServiceDefaults;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace AgentLab.LabService.Inference;

/// <summary><c>POST /inference/</c>: one model call, answered as one JSON document or streamed as NDJSON events.</summary>
public static class InferenceApi
{
    public const string NdjsonContentType = "application/x-ndjson";
    private const string CompletionCapability = "completion";

    /// <summary>Largest <c>parameters.timeout_seconds</c> accepted (one day, as Ollama:TotalTimeoutSeconds).</summary>
    public const int MaxTimeoutSeconds = 86_400;

    public static RouteGroupBuilder MapInferenceApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/inference").WithTags("Inference");
        group.MapPost("/", InferAsync).WithName("Infer");
        return group;
    }

    public static async Task<IResult> InferAsync(HttpContext context, ModelManager models, IChatClient chat,
        IOptions<LabOptions> options)
    {
        // RequestAborted: a client that disconnects cancels the model call, so the model stops generating.
        var ct = context.RequestAborted;
        if (!context.Request.HasJsonContentType())
        {
            return Problems.Create(StatusCodes.Status415UnsupportedMediaType, "unsupported_media_type", "Unsupported media type",
                "Send the request body as JSON with 'Content-Type: application/json'.");
        }

        InferenceRequest? request;
        try
        {
            request = await context.Request.ReadFromJsonAsync(LabJsonContext.Default.InferenceRequest, ct);
        }
        catch (JsonException ex)
        {
            var path = ex.Path ?? "$";
            return Problems.Create(StatusCodes.Status400BadRequest, "invalid_json", "The request body is not valid JSON",
                $"The JSON at '{path}' could not be read: {FirstSentence(ex.Message)} Send an object like " +
                "{\"prompt\": \"...\", \"model\": \"mistral7b\", \"parameters\": {\"temperature\": 0.7}}.",
                [new("json_path", path)]);
        }

        if (Validate(request, options.Value) is { } errors)
        {
            return TypedResults.ValidationProblem(errors, "The request has invalid fields; see 'errors' for each one.",
                title: "Invalid inference request",
                extensions: new Dictionary<string, object?> { [Problems.CodeKey] = "validation_failed" });
        }

        // Unknown model or an unreachable server fail here, before any byte is written: plain ProblemDetails.
        var model = await models.ResolveAsync(request!.Model, ct);
        // An empty list means an Ollama too old to report capabilities: let the model server decide.
        if (model.Capabilities.Count > 0 && !model.Capabilities.Contains(CompletionCapability))
            throw new ModelNotCapableException(model, CompletionCapability);
        var server = await models.GetServerAsync(ct);
        var requestedModel = string.IsNullOrWhiteSpace(request.Model) ? models.DefaultModel : request.Model.Trim();
        var messages = BuildMessages(request);
        var chatOptions = BuildChatOptions(request, model.Name);
        var result = new InferenceAccumulator(model.Name, requestedModel, server.Kind);

        if (WantsNdjson(context.Request))
        {
            await StreamAsync(context, chat, messages, chatOptions, result, ct);
            return Results.Empty;
        }

        await foreach (var update in chat.GetStreamingResponseAsync(messages, chatOptions, ct))
            result.Add(update);
        return TypedResults.Json(result.ToResponse(), LabJsonContext.Wire.InferenceResponse);
    }

    private static async Task StreamAsync(HttpContext context, IChatClient chat, List<ChatMessage> messages,
        ChatOptions chatOptions, InferenceAccumulator result, CancellationToken ct)
    {
        await using var updates = chat.GetStreamingResponseAsync(messages, chatOptions, ct).GetAsyncEnumerator(ct);

        // Hold the response until the model's first line: a failure before it (server down, model missing,
        // busy, first-token timeout) is still an ordinary ProblemDetails with its status code.
        var hasUpdate = await updates.MoveNextAsync();

        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = NdjsonContentType;
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        var writer = new NdjsonWriter(response.BodyWriter);
        await writer.WriteAsync(new InferenceStartedEvent { Model = result.Model, ModelServer = result.ModelServer },
            LabJsonContext.Wire.InferenceStartedEvent, ct);
        try
        {
            while (hasUpdate)
            {
                var update = updates.Current;
                result.Add(update);
                var text = update.Text;
                if (text.Length > 0)
                    await writer.WriteTokenAsync(text, ct);
                hasUpdate = await updates.MoveNextAsync();
            }
            await writer.WriteAsync(new InferenceCompletedEvent { Result = result.ToResponse() },
                LabJsonContext.Wire.InferenceCompletedEvent, ct);
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            // The status line is gone: report the failure as the stream's last event.
            var error = LabExceptionHandler.TryMap(ex) ?? new LabError(StatusCodes.Status500InternalServerError, "internal_error",
                "Unexpected failure", $"LabService failed unexpectedly (trace id {Activity.Current?.TraceId}); see its logs.");
            context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(InferenceApi).FullName!)
                .StreamFailed(error.Code, ex);
            await writer.WriteAsync(new InferenceErrorEvent
            {
                Error = new InferenceError { Code = error.Code, Message = error.Detail, Status = error.Status },
            }, LabJsonContext.Wire.InferenceErrorEvent, ct);
        }
    }

    /// <summary>Field errors keyed by JSON name, or null when the request is valid.</summary>
    public static Dictionary<string, string[]>? Validate(InferenceRequest? request, LabOptions options)
    {
        if (request is null)
            return new() { ["$"] = ["The body must be a JSON object with at least a 'prompt'."] };

        Dictionary<string, string[]>? errors = null;
        void Add(string field, string message) => (errors ??= [])[field] = [message];

        if (string.IsNullOrWhiteSpace(request.Prompt))
            Add("prompt", "'prompt' is required and must not be empty.");
        else if (request.Prompt.Length > options.MaxPromptLength)
            Add("prompt", $"'prompt' is {request.Prompt.Length} characters; the limit is {options.MaxPromptLength} (Lab:MaxPromptLength).");
        else if (request.Prompt.Contains('\0'))
            Add("prompt", "'prompt' contains a NUL character (\\u0000), which cannot be stored; remove it.");

        if (request.System is { } system)
        {
            if (system.Length > options.MaxPromptLength)
                Add("system", $"'system' is {system.Length} characters; the limit is {options.MaxPromptLength}.");
            else if (system.Contains('\0'))
                Add("system", "'system' contains a NUL character (\\u0000); remove it.");
        }

        if (request.Model is { } model && (model.Trim().Length == 0 || model.Length > 200 || model.Contains('\0')))
            Add("model", "'model' must be a model name or alias such as 'mistral7b' or 'llama3.2:latest' (see GET /models/).");

        if (request.Parameters is { } p)
        {
            if (p.Temperature is { } t && (t < 0 || t > 2 || double.IsNaN(t)))
                Add("parameters.temperature", "'temperature' must be between 0 and 2.");
            if (p.MaxTokens is <= 0)
                Add("parameters.max_tokens", "'max_tokens' must be greater than 0.");
            if (p.NumCtx is <= 0)
                Add("parameters.num_ctx", "'num_ctx' must be greater than 0.");
            if (p.TopP is { } topP && (topP < 0 || topP > 1 || double.IsNaN(topP)))
                Add("parameters.top_p", "'top_p' must be between 0 and 1.");
            // Bounded above too: a huge value overflows TimeSpan/CancellationTokenSource and would answer 500.
            if (p.TimeoutSeconds is { } timeout && (timeout <= 0 || timeout > MaxTimeoutSeconds || double.IsNaN(timeout)))
                Add("parameters.timeout_seconds", $"'timeout_seconds' must be greater than 0 and at most {MaxTimeoutSeconds}.");
        }
        return errors;
    }

    internal static List<ChatMessage> BuildMessages(InferenceRequest request)
    {
        var messages = new List<ChatMessage>(2);
        if (!string.IsNullOrEmpty(request.System))
            messages.Add(new ChatMessage(ChatRole.System, request.System));
        messages.Add(new ChatMessage(ChatRole.User, request.Prompt));
        return messages;
    }

    internal static ChatOptions BuildChatOptions(InferenceRequest request, string model)
    {
        var p = request.Parameters;
        var chatOptions = new ChatOptions
        {
            ModelId = model,
            Temperature = (float?)p?.Temperature,
            MaxOutputTokens = p?.MaxTokens,
            Seed = p?.Seed,
            TopP = (float?)p?.TopP,
        };
        if (p?.NumCtx is not null || p?.TimeoutSeconds is not null)
        {
            chatOptions.AdditionalProperties = [];
            if (p.NumCtx is { } numCtx)
                chatOptions.AdditionalProperties[OllamaClient.NumCtxKey] = numCtx;
            if (p.TimeoutSeconds is { } timeout)
                chatOptions.AdditionalProperties[OllamaClient.TimeoutSecondsKey] = timeout;
        }
        return chatOptions;
    }

    private static bool WantsNdjson(HttpRequest request)
    {
        foreach (var value in request.Headers.Accept)
        {
            if (value is not null && value.Contains(NdjsonContentType, StringComparison.OrdinalIgnoreCase))
                return true;
        }
        return false;
    }

    private static string FirstSentence(string message)
    {
        // System.Text.Json appends "Path: $.x | LineNumber..." which we already report as json_path.
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }
}

/// <summary>Collects the output and metrics of one model call; TTFT and wall time are measured here.</summary>
internal sealed class InferenceAccumulator(string model, string requestedModel, string modelServer)
{
    private readonly long _start = Stopwatch.GetTimestamp();
    private readonly StringBuilder _output = new();
    private TimeSpan? _timeToFirstToken;
    private ChatResponseUpdate? _final;
    private UsageDetails? _usage;

    public string Model { get; private set; } = model;
    public string ModelServer => modelServer;

    public void Add(ChatResponseUpdate update)
    {
        foreach (var content in update.Contents)
        {
            switch (content)
            {
                case TextContent text:
                    _timeToFirstToken ??= Stopwatch.GetElapsedTime(_start);
                    _output.Append(text.Text);
                    break;
                case TextReasoningContent or FunctionCallContent:
                    _timeToFirstToken ??= Stopwatch.GetElapsedTime(_start);
                    break;
                case UsageContent usage:
                    _usage = usage.Details;
                    break;
            }
        }
        if (update.FinishReason is not null || update.AdditionalProperties is not null)
            _final = update;
        if (update.ModelId is { Length: > 0 } id)
            Model = id;
    }

    public InferenceResponse ToResponse()
    {
        var wall = Stopwatch.GetElapsedTime(_start);
        var props = _final?.AdditionalProperties;
        var evalNs = Nanoseconds(props, OllamaMetadata.EvalDurationNs);
        var completionTokens = (int)(_usage?.OutputTokenCount ?? 0);
        return new InferenceResponse
        {
            Output = _output.ToString(),
            Model = Model,
            RequestedModel = requestedModel,
            ModelServer = modelServer,
            DoneReason = props?.TryGetValue(OllamaMetadata.DoneReason, out string? reason) == true && reason is not null
                ? reason
                : _final?.FinishReason?.Value ?? "stop",
            Metrics = new InferenceMetrics
            {
                TotalDurationMs = Nanoseconds(props, OllamaMetadata.TotalDurationNs) / 1e6,
                TimeToFirstTokenMs = (_timeToFirstToken ?? wall).TotalMilliseconds,
                LoadDurationMs = Nanoseconds(props, OllamaMetadata.LoadDurationNs) / 1e6,
                PromptEvalDurationMs = Nanoseconds(props, OllamaMetadata.PromptEvalDurationNs) / 1e6,
                EvalDurationMs = evalNs / 1e6,
                PromptTokens = (int)(_usage?.InputTokenCount ?? 0),
                CompletionTokens = completionTokens,
                TokensPerSecond = evalNs > 0 ? completionTokens / (evalNs / 1e9) : 0,
                WallDurationMs = wall.TotalMilliseconds,
            },
        };
    }

    private static long Nanoseconds(AdditionalPropertiesDictionary? props, string key) =>
        props is not null && props.TryGetValue(key, out long value) ? value : 0;
}

/// <summary>Writes one JSON object per line to the response and flushes it, so each event leaves at once.</summary>
internal sealed class NdjsonWriter(PipeWriter pipe)
{
    private static readonly JsonEncodedText TypeName = JsonEncodedText.Encode("type");
    private static readonly JsonEncodedText TokenType = JsonEncodedText.Encode("token");
    private static readonly JsonEncodedText ContentName = JsonEncodedText.Encode("content");

    // Relaxed escaping: this is an API stream, never embedded in HTML, and non-ASCII text stays readable and short.
    private readonly Utf8JsonWriter _json = new(pipe, new JsonWriterOptions
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = true,
    });

    public async ValueTask WriteAsync<T>(T value, JsonTypeInfo<T> typeInfo, CancellationToken ct)
    {
        JsonSerializer.Serialize(_json, value, typeInfo);
        await EndLineAsync(ct);
    }

    public async ValueTask WriteTokenAsync(string content, CancellationToken ct)
    {
        // The hot path: one per chunk, written without an event object.
        _json.WriteStartObject();
        _json.WriteString(TypeName, TokenType);
        _json.WriteString(ContentName, content);
        _json.WriteEndObject();
        await EndLineAsync(ct);
    }

    private async ValueTask EndLineAsync(CancellationToken ct)
    {
        _json.Flush();
        _json.Reset();
        pipe.GetSpan(1)[0] = (byte)'\n';
        pipe.Advance(1);
        await pipe.FlushAsync(ct);
    }
}
