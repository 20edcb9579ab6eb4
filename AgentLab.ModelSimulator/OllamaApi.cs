using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.Options;

namespace AgentLab.ModelSimulator;

/// <summary>The Ollama REST endpoints, answering like Ollama does, failures included.</summary>
public static class OllamaApi
{
    public const string ServerHeader = "X-Model-Server";
    public const string ServerHeaderValue = "agentlab-simulator";
    private const string NdJson = "application/x-ndjson";

    public static IEndpointRouteBuilder MapOllamaApi(this IEndpointRouteBuilder app)
    {
        app.MapMethods("/", ["GET", "HEAD"], () => TypedResults.Text("Ollama is running"));
        app.MapMethods("/api/version", ["GET", "HEAD"], GetVersion);
        app.MapMethods("/api/tags", ["GET", "HEAD"], (ModelRegistry registry) => TypedResults.Json(registry.Tags(), OllamaJsonContext.Wire.TagsResponse));
        app.MapGet("/api/ps", (ModelRegistry registry) => TypedResults.Json(registry.Ps(), OllamaJsonContext.Wire.PsResponse));
        app.MapPost("/api/show", ShowAsync);
        app.MapPost("/api/pull", PullAsync);
        app.MapPost("/api/chat", ChatAsync);
        app.MapPost("/api/generate", GenerateAsync);
        return app;
    }

    public static IResult GetVersion(IOptions<SimulatorOptions> options) =>
        TypedResults.Json(new VersionResponse { Version = options.Value.Version }, OllamaJsonContext.Wire.VersionResponse);

    /// <summary>Ollama's error shape: <c>{"error":"..."}</c> as application/json with the given status.</summary>
    public static IResult Error(int status, string message) =>
        TypedResults.Json(new ErrorResponse { Error = message }, OllamaJsonContext.Wire.ErrorResponse, statusCode: status);

    public static async Task<IResult> ShowAsync(HttpContext http, ModelRegistry registry)
    {
        var (request, error) = await ReadAsync(http, OllamaJsonContext.Wire.ModelRequest);
        if (error is not null)
            return error;
        var name = request!.Model is { Length: > 0 } m ? m : request.Name;
        if (string.IsNullOrWhiteSpace(name))
            return Error(400, "model is required");
        return registry.TryGet(name, out var model)
            ? TypedResults.Json(registry.Show(model), OllamaJsonContext.Wire.ShowResponse)
            : Error(404, $"model '{name}' not found");
    }

    public static async Task PullAsync(HttpContext http, ModelRegistry registry, IOptions<SimulatorOptions> options, ILogger<ModelRegistry> logger)
    {
        var (request, error) = await ReadAsync(http, OllamaJsonContext.Wire.ModelRequest);
        if (error is not null)
        {
            await error.ExecuteAsync(http);
            return;
        }
        var name = request!.Model is { Length: > 0 } m ? m : request.Name;
        if (string.IsNullOrWhiteSpace(name))
        {
            await Error(400, "model is required").ExecuteAsync(http);
            return;
        }

        var ct = http.RequestAborted;
        var found = registry.TryFindPullable(name, out var model);
        const string notFound = "pull model manifest: file does not exist";
        if (request.Stream == false)
        {
            // Ollama's waitForStream: the progress is swallowed and the outcome is one object (errors get 500).
            if (!found)
            {
                await Error(500, notFound).ExecuteAsync(http);
                return;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(options.Value.PullStepDelayMs * 4), ct);
            registry.Install(model!);
            logger.ModelPulled(ModelRegistry.Normalize(name));
            await TypedResults.Json(new ProgressResponse { Status = "success" }, OllamaJsonContext.Wire.ProgressResponse).ExecuteAsync(http);
            return;
        }

        // Streamed, Ollama has already answered 200 when the registry says no: the error comes as a line.
        http.Response.ContentType = NdJson;
        var body = http.Response.BodyWriter;
        var delay = TimeSpan.FromMilliseconds(options.Value.PullStepDelayMs);
        var progress = new ProgressResponse { Status = "pulling manifest" };
        await WriteLineAsync(body, progress, OllamaJsonContext.Wire.ProgressResponse, ct);
        await Task.Delay(delay, ct);
        if (!found)
        {
            await WriteLineAsync(body, new ErrorResponse { Error = notFound }, OllamaJsonContext.Wire.ErrorResponse, ct);
            return;
        }

        var digest = ModelRegistry.DigestOf(model!);
        (string Digest, long Size)[] layers =
        [
            ("sha256:" + digest, model!.Size),
            ("sha256:" + Hashing.HexDigest(digest + "/template"), 1_429),
            ("sha256:" + Hashing.HexDigest(digest + "/params"), 96),
        ];
        foreach (var (layerDigest, size) in layers)
        {
            progress.Digest = layerDigest;
            progress.Status = "downloading " + layerDigest;
            progress.Total = size;
            // The first line of a layer has no `completed` yet, as in Ollama before the first bytes arrive.
            for (var step = 0; step <= 4; step++)
            {
                progress.Completed = size * step / 4;
                await WriteLineAsync(body, progress, OllamaJsonContext.Wire.ProgressResponse, ct);
                await Task.Delay(delay, ct);
            }
        }
        foreach (var status in new[] { "verifying sha256 digest", "writing manifest", "success" })
        {
            if (status == "success")
            {
                registry.Install(model);
                logger.ModelPulled(ModelRegistry.Normalize(name));
            }
            await WriteLineAsync(body, new ProgressResponse { Status = status }, OllamaJsonContext.Wire.ProgressResponse, ct);
            if (status != "success")
                await Task.Delay(delay, ct);
        }
    }

    public static async Task ChatAsync(HttpContext http, ModelRegistry registry, IOptions<SimulatorOptions> options, ILogger<ModelRegistry> logger)
    {
        var (request, error) = await ReadAsync(http, OllamaJsonContext.Wire.ChatRequest);
        if (error is not null)
        {
            await error.ExecuteAsync(http);
            return;
        }
        var messages = request!.Messages ?? [];
        var hasTools = request.Tools is { Count: > 0 };
        var plan = new Plan(http, request.Model, request.Stream, request.KeepAlive, request.Think, request.Options,
            Endpoint: "chat", WantsTools: hasTools, IsEmpty: messages.Count == 0);
        await RunAsync(plan, registry, options.Value, logger, (model, think) => new ReplyInput(
            model.Name, System: null, messages, request.Options?.Seed, request.Format, request.Tools, think, request.Options?.NumPredict));
    }

    public static async Task GenerateAsync(HttpContext http, ModelRegistry registry, IOptions<SimulatorOptions> options, ILogger<ModelRegistry> logger)
    {
        var (request, error) = await ReadAsync(http, OllamaJsonContext.Wire.GenerateRequest);
        if (error is not null)
        {
            await error.ExecuteAsync(http);
            return;
        }
        var prompt = request!.Prompt ?? "";
        var plan = new Plan(http, request.Model, request.Stream, request.KeepAlive, request.Think, request.Options,
            Endpoint: "generate", WantsTools: false, IsEmpty: prompt.Length == 0);
        await RunAsync(plan, registry, options.Value, logger, (model, think) => new ReplyInput(
            model.Name, request.System, [new ChatMessage { Role = "user", Content = prompt }], request.Options?.Seed,
            request.Format, Tools: null, think, request.Options?.NumPredict));
    }

    private sealed record Plan(HttpContext Http, string? ModelName, bool? Stream, JsonElement? KeepAlive, JsonElement? Think,
        RequestOptions? Options, string Endpoint, bool WantsTools, bool IsEmpty)
    {
        public bool IsChat => Endpoint == "chat";
    }

    /// <summary>Checks, faults, load, prompt evaluation and token generation, shared by chat and generate.</summary>
    private static async Task RunAsync(Plan plan, ModelRegistry registry, SimulatorOptions options, ILogger logger,
        Func<SimulatedModel, bool, ReplyInput> input)
    {
        var http = plan.Http;
        var started = Stopwatch.GetTimestamp();
        if (string.IsNullOrWhiteSpace(plan.ModelName))
        {
            await Error(400, "model is required").ExecuteAsync(http);
            return;
        }
        var requested = plan.ModelName;

        var found = registry.TryGet(requested, out var model);
        var faultText = http.Request.Headers[Fault.HeaderName].ToString() is { Length: > 0 } header ? header : model?.Fault;
        if (!Fault.TryParse(faultText, out var fault, out var faultError))
        {
            await Error(400, faultError).ExecuteAsync(http);
            return;
        }
        if (fault.Kind != FaultKind.None)
            logger.FaultInjected(faultText!, http.Request.Path, requested);
        if (!found || fault.Kind == FaultKind.NotFound)
        {
            await Error(404, $"model '{requested}' not found").ExecuteAsync(http);
            return;
        }

        // Capability checks in Ollama's order and words.
        if (!model!.Capabilities.Contains("completion"))
        {
            await Error(400, $"\"{requested}\" does not support {plan.Endpoint}").ExecuteAsync(http);
            return;
        }
        if (plan.WantsTools && !model.Capabilities.Contains("tools"))
        {
            await Error(400, $"\"{requested}\" does not support tools").ExecuteAsync(http);
            return;
        }
        var canThink = model.Capabilities.Contains("thinking");
        var thinkRequested = plan.Think is { } t && t.ValueKind != JsonValueKind.False && t.ValueKind != JsonValueKind.Null;
        if (thinkRequested && !canThink)
        {
            await Error(400, $"\"{requested}\" does not support thinking").ExecuteAsync(http);
            return;
        }
        // A thinking model thinks unless told not to (Ollama turns think on when it is unset).
        var think = canThink && (plan.Think is not { } explicitThink || thinkRequested || explicitThink.ValueKind == JsonValueKind.Null);

        if (!KeepAlive.TryParse(plan.KeepAlive, out var keepAlive, out var keepAliveError))
        {
            await Error(400, keepAliveError).ExecuteAsync(http);
            return;
        }
        if (!TryHeaderMs(http, Fault.TokenLatencyHeader, out var tokenLatencyOverride, out var headerError)
            || !TryHeaderMs(http, Fault.TtftHeader, out var ttftOverride, out headerError))
        {
            await Error(400, headerError!).ExecuteAsync(http);
            return;
        }

        switch (fault.Kind)
        {
            case FaultKind.QueueFull:
                await Error(503, Fault.QueueFullMessage).ExecuteAsync(http);
                return;
            case FaultKind.Http500:
                await Error(500, Fault.RunnerCrashedMessage).ExecuteAsync(http);
                return;
        }

        if (!registry.TryEnterQueue(options.MaxQueue, out var inFlight))
        {
            logger.QueueFull(inFlight, options.MaxQueue);
            await Error(503, Fault.QueueFullMessage).ExecuteAsync(http);
            return;
        }

        var ct = http.RequestAborted;
        var acquired = false;
        try
        {
            // An empty request only loads (or, with keep_alive 0, unloads) the model.
            if (plan.IsEmpty && keepAlive == TimeSpan.Zero)
            {
                registry.Unload(model);
                await WriteLoadReplyAsync(plan, requested, "unload", ct);
                return;
            }

            var loadDuration = TimeSpan.FromMilliseconds(model.LoadDurationMs ?? options.LoadDurationMs);
            var load = await registry.AcquireAsync(model, plan.Options?.NumCtx, loadDuration, ct);
            acquired = true;
            if (plan.IsEmpty)
            {
                await WriteLoadReplyAsync(plan, requested, "load", ct);
                return;
            }

            var ttftMs = fault.Kind == FaultKind.SlowFirstToken ? fault.Arg : ttftOverride ?? model.TimeToFirstTokenMs ?? options.TimeToFirstTokenMs;
            var tokenMs = tokenLatencyOverride ?? model.TokenLatencyMs ?? options.TokenLatencyMs;
            var reply = ReplyGenerator.Create(input(model, think));
            var generation = new Generation(plan, requested, reply, fault, ttftMs, tokenMs, load, started);
            await generation.RunAsync(ct);
        }
        catch (OperationCanceledException)
        {
            // The client went away: stop generating, as Ollama does when the connection closes.
            registry.CountAborted();
            logger.ClientAborted(http.Request.Path, requested);
        }
        finally
        {
            if (acquired)
                registry.Release(model, keepAlive);
            registry.ExitQueue();
        }
    }

    private static async Task WriteLoadReplyAsync(Plan plan, string model, string reason, CancellationToken ct)
    {
        // Ollama answers load/unload with c.JSON: one application/json object even when streaming was asked for.
        var http = plan.Http;
        var now = DateTime.UtcNow;
        IResult result = plan.IsChat
            ? TypedResults.Json(new ChatResponse { Model = model, CreatedAt = now, Done = true, DoneReason = reason }, OllamaJsonContext.Wire.ChatResponse)
            : TypedResults.Json(new GenerateResponse { Model = model, CreatedAt = now, Done = true, DoneReason = reason }, OllamaJsonContext.Wire.GenerateResponse);
        ct.ThrowIfCancellationRequested();
        await result.ExecuteAsync(http);
    }

    /// <summary>One generation: waits the configured times and writes NDJSON lines (or one object), playing faults.</summary>
    private sealed class Generation(Plan plan, string model, Reply reply, Fault fault, int ttftMs, int tokenMs, TimeSpan load, long started)
    {
        private readonly ChatResponse _chat = new() { Model = model };
        private readonly GenerateResponse _generate = new() { Model = model };
        private readonly HttpResponse _response = plan.Http.Response;

        public async Task RunAsync(CancellationToken ct)
        {
            var streaming = plan.Stream != false;
            var promptStarted = Stopwatch.GetTimestamp();
            await DelayAsync(ttftMs, ct);
            var promptEval = Reported(ttftMs, 1, Stopwatch.GetElapsedTime(promptStarted));

            var evalStarted = Stopwatch.GetTimestamp();
            var lines = reply.ThinkingTokens.Count + reply.Tokens.Count + (reply.ToolCall is null ? 0 : 1);
            var limit = fault.Kind is FaultKind.ErrorMidStream or FaultKind.Stall or FaultKind.Cut ? Math.Min(fault.Arg, lines) : lines;

            if (!streaming)
            {
                await DelayAsync(tokenMs * EvalCountUpTo(limit), ct);
                switch (fault.Kind)
                {
                    case FaultKind.ErrorMidStream:
                        await Error(500, Fault.MidStreamMessage).ExecuteAsync(plan.Http);
                        return;
                    case FaultKind.Stall:
                        await Task.Delay(Timeout.Infinite, ct);
                        return;
                    case FaultKind.Cut:
                        // No bytes and a dropped connection: what a stream:false client sees when the server dies.
                        plan.Http.Abort();
                        return;
                }
                Final(promptEval, evalStarted, full: true);
                _response.ContentType = "application/json; charset=utf-8";
                await WriteLineAsync(_response.BodyWriter, ct, newline: false);
                return;
            }

            _response.ContentType = NdJson;
            var writer = _response.BodyWriter;
            var index = 0;
            foreach (var token in reply.ThinkingTokens)
            {
                if (index++ >= limit)
                    break;
                await DelayAsync(tokenMs, ct);
                SetChunk("", token);
                await WriteLineAsync(writer, ct);
            }
            foreach (var token in reply.Tokens)
            {
                if (index++ >= limit)
                    break;
                await DelayAsync(tokenMs, ct);
                SetChunk(token, null);
                await WriteLineAsync(writer, ct);
            }
            if (reply.ToolCall is { } call && index++ < limit)
            {
                // A real model writes the call token by token; Ollama's parser sends it whole once complete.
                await DelayAsync(tokenMs * reply.ToolCallTokens, ct);
                SetChunk("", null);
                _chat.Message.ToolCalls = [call];
                await WriteLineAsync(writer, ct);
                _chat.Message.ToolCalls = null;
            }

            switch (fault.Kind)
            {
                case FaultKind.ErrorMidStream:
                    await OllamaApi.WriteLineAsync(writer, new ErrorResponse { Error = Fault.MidStreamMessage }, OllamaJsonContext.Wire.ErrorResponse, ct);
                    return;
                case FaultKind.Stall:
                    // Headers and N lines are out; now nothing more until the client gives up.
                    await Task.Delay(Timeout.Infinite, ct);
                    return;
                case FaultKind.Cut:
                    // Ends the chunked body cleanly without a done line: the silent truncation clients must detect.
                    return;
            }

            Final(promptEval, evalStarted, full: false);
            await WriteLineAsync(writer, ct);
        }

        private int EvalCountUpTo(int lines)
        {
            var text = Math.Min(lines, reply.ThinkingTokens.Count + reply.Tokens.Count);
            return text + (reply.ToolCall is not null && lines > text ? reply.ToolCallTokens : 0);
        }

        private void SetChunk(string content, string? thinking)
        {
            var now = DateTime.UtcNow;
            if (plan.IsChat)
            {
                _chat.CreatedAt = now;
                _chat.Message.Content = content;
                _chat.Message.Thinking = thinking;
            }
            else
            {
                _generate.CreatedAt = now;
                _generate.Response = content;
                _generate.Thinking = thinking;
            }
        }

        private void Final(long promptEval, long evalStarted, bool full)
        {
            var evalCount = reply.EvalCount;
            var eval = Reported(tokenMs, evalCount, Stopwatch.GetElapsedTime(evalStarted));
            var loadNs = load.Ticks * 100;
            var total = Math.Max(Stopwatch.GetElapsedTime(started).Ticks * 100, loadNs + promptEval + eval);

            SetChunk(full ? reply.Content : "", full && reply.ThinkingTokens.Count > 0 ? reply.Thinking : null);
            if (full && reply.ToolCall is { } call)
                _chat.Message.ToolCalls = [call];
            ResponseMetrics m = plan.IsChat ? _chat : _generate;
            m.Done = true;
            m.DoneReason = reply.DoneReason;
            m.TotalDuration = total;
            m.LoadDuration = loadNs;
            m.PromptEvalCount = reply.PromptTokens;
            m.PromptEvalDuration = promptEval;
            m.EvalCount = evalCount;
            m.EvalDuration = eval;
            if (!plan.IsChat)
                _generate.Context = ContextTokens();
        }

        private int[] ContextTokens()
        {
            // Stand-in token ids for the deprecated `context` field: stable, one per prompt and reply token (capped).
            var count = Math.Min(reply.PromptTokens + reply.EvalCount, 512);
            var ids = new int[count];
            var rng = new DeterministicRandom((ulong)(reply.PromptTokens * 31 + reply.EvalCount));
            for (var i = 0; i < count; i++)
                ids[i] = 1 + rng.Next(32000);
            return ids;
        }

        /// <summary>count × configured ms in ns; when the configured latency is 0 the measured time (never 0).</summary>
        private static long Reported(int ms, int count, TimeSpan measured) =>
            ms > 0 ? (long)ms * count * 1_000_000 : Math.Max(1, measured.Ticks * 100);

        private Task WriteLineAsync(PipeWriter writer, CancellationToken ct, bool newline = true) =>
            plan.IsChat
                ? OllamaApi.WriteLineAsync(writer, _chat, OllamaJsonContext.Wire.ChatResponse, ct, newline)
                : OllamaApi.WriteLineAsync(writer, _generate, OllamaJsonContext.Wire.GenerateResponse, ct, newline);

        private static Task DelayAsync(int ms, CancellationToken ct) => ms > 0 ? Task.Delay(ms, ct) : Task.CompletedTask;
    }

    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    /// <summary>Writes one compact JSON object and a newline, then flushes so the line leaves now.</summary>
    private static async Task WriteLineAsync<T>(PipeWriter body, T value, JsonTypeInfo<T> type, CancellationToken ct, bool newline = true)
    {
        // One writer per thread, reset per line: no allocation per token beyond the pipe's own buffers.
        var writer = t_writer ??= new Utf8JsonWriter(body, new JsonWriterOptions { SkipValidation = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        writer.Reset(body);
        JsonSerializer.Serialize(writer, value, type);
        writer.Reset(Stream.Null);
        if (newline)
            body.Write("\n"u8);
        var result = await body.FlushAsync(ct);
        if (result.IsCanceled || result.IsCompleted)
            throw new OperationCanceledException("The client closed the stream.", ct);
    }

    private static async Task<(T? Value, IResult? Error)> ReadAsync<T>(HttpContext http, JsonTypeInfo<T> type) where T : class
    {
        var reader = http.Request.BodyReader;
        ReadResult read;
        while (true)
        {
            read = await reader.ReadAsync(http.RequestAborted);
            if (read.IsCompleted || read.IsCanceled)
                break;
            reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
        var buffer = read.Buffer;
        try
        {
            if (IsBlank(buffer))
                return (null, Error(400, "missing request body"));
            var json = new Utf8JsonReader(buffer);
            var value = JsonSerializer.Deserialize(ref json, type);
            return value is null ? (null, Error(400, "missing request body")) : (value, null);
        }
        catch (JsonException ex)
        {
            return (null, Error(400, $"invalid JSON in request body: {ex.Message}"));
        }
        finally
        {
            reader.AdvanceTo(buffer.End);
        }
    }

    private static bool IsBlank(ReadOnlySequence<byte> buffer)
    {
        foreach (var segment in buffer)
            foreach (var b in segment.Span)
                if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'))
                    return false;
        return true;
    }

    private static bool TryHeaderMs(HttpContext http, string header, out int? value, out string? error)
    {
        value = null;
        error = null;
        var text = http.Request.Headers[header].ToString();
        if (text.Length == 0)
            return true;
        if (int.TryParse(text, out var ms) && ms is >= 0 and <= 600_000)
        {
            value = ms;
            return true;
        }
        error = $"header {header} must be a whole number of milliseconds between 0 and 600000, got '{text}'";
        return false;
    }
}
