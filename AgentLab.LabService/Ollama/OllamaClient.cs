using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using AgentLab.LabService.Models;
using AgentLab.ServiceDefaults;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace AgentLab.LabService.Ollama;

/// <summary>
/// Our client for Ollama's native REST API, shaped after OllamaSharp: it takes a typed <see cref="HttpClient"/>,
/// funnels every request through <see cref="SendAsync"/>, reads NDJSON as <see cref="IAsyncEnumerable{T}"/>,
/// throws typed <see cref="OllamaException"/>s, and implements <see cref="IChatClient"/> over <c>/api/chat</c>.
/// </summary>
public sealed class OllamaClient : IChatClient
{
    /// <summary>Header the AgentLab simulator sends on every answer; real Ollama does not.</summary>
    public const string ModelServerHeader = "X-Model-Server";
    public const string SimulatorHeaderValue = "agentlab-simulator";

    // ChatOptions.AdditionalProperties keys this client reads.
    public const string NumCtxKey = "num_ctx";
    public const string TimeoutSecondsKey = "timeout_seconds";
    public const string KeepAliveKey = "keep_alive";

    private const int MaxLineBytes = 16 * 1024 * 1024;
    private const int MaxErrorBodyChars = 2048;

    private static readonly MediaTypeHeaderValue JsonMediaType = new("application/json");
    private static readonly JsonElement JsonFormat = JsonDocument.Parse("\"json\"").RootElement.Clone();

    // M.E.AI's defaults (reflection fallback for arbitrary tool results) but compact: the model pays for every byte.
    private static readonly JsonSerializerOptions ToolResultJson = CompactToolResultOptions();

    private readonly HttpClient _http;
    private readonly OllamaOptions _options;
    private readonly ILogger<OllamaClient> _logger;
    private readonly string _defaultModel;
    private readonly JsonElement? _keepAlive;
    private readonly ChatClientMetadata _metadata;

    public OllamaClient(HttpClient http, IOptions<OllamaOptions> options, IOptions<LabOptions> lab, ILogger<OllamaClient> logger)
    {
        _http = http;
        _options = options.Value;
        _logger = logger;
        _http.BaseAddress ??= new Uri(OllamaOptions.DefaultEndpoint + "/");
        _defaultModel = ModelAliases.Resolve(lab.Value.DefaultModel, lab.Value.Aliases);
        _keepAlive = ParseKeepAlive(_options.KeepAlive);
        _metadata = new ChatClientMetadata("ollama", _http.BaseAddress, _defaultModel);
    }

    /// <summary>The model server's base address.</summary>
    public Uri Endpoint => _http.BaseAddress!;

    private TimeSpan FirstTokenTimeout => TimeSpan.FromSeconds(_options.FirstTokenTimeoutSeconds);
    private TimeSpan IdleTimeout => TimeSpan.FromSeconds(_options.IdleTimeoutSeconds);
    private TimeSpan TotalTimeout => TimeSpan.FromSeconds(_options.TotalTimeoutSeconds);

    // ---------------------------------------------------------------- IChatClient

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        // Always streamed underneath so the phase timeouts and TTFT work; aggregated here.
        var text = new StringBuilder();
        var reasoning = new StringBuilder();
        var calls = new List<AIContent>();
        ChatResponseUpdate? last = null;
        await foreach (var update in GetStreamingResponseAsync(messages, options, cancellationToken).ConfigureAwait(false))
        {
            foreach (var content in update.Contents)
            {
                switch (content)
                {
                    case TextContent t: text.Append(t.Text); break;
                    case TextReasoningContent r: reasoning.Append(r.Text); break;
                    case FunctionCallContent f: calls.Add(f); break;
                }
            }
            last = update;
        }

        var contents = new List<AIContent>(calls.Count + 2);
        if (reasoning.Length > 0)
            contents.Add(new TextReasoningContent(reasoning.ToString()));
        contents.Add(new TextContent(text.ToString()));
        contents.AddRange(calls);
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, contents) { MessageId = last?.MessageId })
        {
            ResponseId = last?.ResponseId,
            ModelId = last?.ModelId,
            FinishReason = last?.FinishReason,
            Usage = last?.Contents.OfType<UsageContent>().FirstOrDefault()?.Details,
            AdditionalProperties = last?.AdditionalProperties,
            RawRepresentation = last?.RawRepresentation,
        };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages,
        ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var request = BuildChatRequest(messages, options);
        var total = TotalTimeout;
        // A caller may ask for less time than the operator's ceiling (Ollama:TotalTimeoutSeconds), never more.
        if (options?.AdditionalProperties?.TryGetValue(TimeoutSecondsKey, out double seconds) == true && seconds > 0)
            total = TimeSpan.FromSeconds(Math.Min(seconds, _options.TotalTimeoutSeconds));

        var responseId = Guid.NewGuid().ToString("N");
        var sawToolCalls = false;
        var timing = new ChatTiming();
        await foreach (var chunk in StreamChatAsync(request, total, timing, cancellationToken).ConfigureAwait(false))
        {
            var update = ToUpdate(chunk, responseId, ref sawToolCalls);
            if (chunk.Done)
                AddFinalMetrics(update, chunk, timing, sawToolCalls);
            yield return update;
        }
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(ChatClientMetadata) ? _metadata
        : serviceType.IsInstanceOfType(this) ? this
        : null;

    // The HttpClient belongs to IHttpClientFactory.
    public void Dispose() { }

    // ---------------------------------------------------------------- typed API for the model manager

    public async Task<OllamaVersion> GetVersionAsync(CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "api/version");
        using var response = await SendAsync(request, model: null, ct).ConfigureAwait(false);
        var body = await ReadJsonAsync(response, OllamaJsonContext.Default.OllamaVersionResponse, ct).ConfigureAwait(false);
        var isSimulator = response.Headers.TryGetValues(ModelServerHeader, out var values)
            && values.Any(v => v.Equals(SimulatorHeaderValue, StringComparison.OrdinalIgnoreCase));
        return new OllamaVersion(body.Version ?? "unknown", isSimulator);
    }

    public async Task<IReadOnlyList<OllamaModelInfo>> ListModelsAsync(CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "api/tags");
        using var response = await SendAsync(request, model: null, ct).ConfigureAwait(false);
        return (await ReadJsonAsync(response, OllamaJsonContext.Default.OllamaTagsResponse, ct).ConfigureAwait(false)).Models;
    }

    public async Task<IReadOnlyList<OllamaRunningModel>> ListRunningAsync(CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "api/ps");
        using var response = await SendAsync(request, model: null, ct).ConfigureAwait(false);
        return (await ReadJsonAsync(response, OllamaJsonContext.Default.OllamaPsResponse, ct).ConfigureAwait(false)).Models;
    }

    public async Task<OllamaShowResponse> ShowModelAsync(string model, CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "api/show")
        {
            Content = JsonBody(new OllamaShowRequest { Model = model }, OllamaJsonContext.Default.OllamaShowRequest),
        };
        using var response = await SendAsync(request, model, ct).ConfigureAwait(false);
        return await ReadJsonAsync(response, OllamaJsonContext.Default.OllamaShowResponse, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Pulls a model, streaming Ollama's progress lines; ends after the <c>success</c> line. A download can take
    /// hours, so there is no total limit, but a server that goes silent for longer than the first-token timeout
    /// (verifying a large blob is the longest quiet spell) is given up on rather than held open forever.
    /// </summary>
    public async IAsyncEnumerable<OllamaPullProgress> PullModelAsync(string model, [EnumeratorCancellation] CancellationToken ct = default)
    {
        using var timeouts = new PhaseTimeouts(ct, FirstTokenTimeout, FirstTokenTimeout, Timeout.InfiniteTimeSpan);
        using var request = new HttpRequestMessage(HttpMethod.Post, "api/pull")
        {
            Content = JsonBody(new OllamaPullRequest { Model = model }, OllamaJsonContext.Default.OllamaPullRequest),
        };
        HttpResponseMessage response;
        try
        {
            response = await SendAsync(request, model, timeouts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (timeouts.TimedOut)
        {
            throw timeouts.CreateException(Endpoint, model);
        }

        using var _ = response;
        var succeeded = false;
        await using var lines = ReadNdjsonAsync(response, OllamaJsonContext.Default.OllamaPullProgress, timeouts.Token)
            .GetAsyncEnumerator(timeouts.Token);
        while (true)
        {
            try
            {
                if (!await lines.MoveNextAsync().ConfigureAwait(false))
                    break;
            }
            catch (OperationCanceledException) when (timeouts.TimedOut)
            {
                throw timeouts.CreateException(Endpoint, model);
            }
            timeouts.LineReceived();
            succeeded |= string.Equals(lines.Current.Status, "success", StringComparison.Ordinal);
            timeouts.Pause();
            yield return lines.Current;
            timeouts.Resume();
        }
        if (!succeeded)
            throw new OllamaServerException(Endpoint, null, $"the pull of '{model}' ended before Ollama reported success; run it again");
    }

    // ---------------------------------------------------------------- the chat stream with phase timeouts

    /// <summary>Streams the raw <c>/api/chat</c> lines: error lines throw, a stream without <c>done:true</c> throws.</summary>
    internal async IAsyncEnumerable<OllamaChatChunk> StreamChatAsync(OllamaChatRequest chatRequest, TimeSpan totalLimit,
        ChatTiming timing, [EnumeratorCancellation] CancellationToken ct)
    {
        using var timeouts = new PhaseTimeouts(ct, FirstTokenTimeout, IdleTimeout, totalLimit);
        using var activity = StartChatActivity(chatRequest.Model);
        timing.Start();
        Exception? failure = null;
        OllamaChatChunk? final = null;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "api/chat")
            {
                Content = JsonBody(chatRequest, OllamaJsonContext.Default.OllamaChatRequest),
            };
            HttpResponseMessage response;
            try
            {
                response = await SendAsync(request, chatRequest.Model, timeouts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (timeouts.TimedOut)
            {
                throw failure = timeouts.CreateException(Endpoint, chatRequest.Model);
            }
            catch (OllamaException ex)
            {
                failure = ex;
                throw;
            }

            using (response)
            {
                await using var lines = ReadNdjsonAsync(response, OllamaJsonContext.Default.OllamaChatChunk, timeouts.Token)
                    .GetAsyncEnumerator(timeouts.Token);
                while (true)
                {
                    try
                    {
                        if (!await lines.MoveNextAsync().ConfigureAwait(false))
                            break;
                    }
                    catch (OperationCanceledException) when (timeouts.TimedOut)
                    {
                        throw failure = timeouts.CreateException(Endpoint, chatRequest.Model);
                    }
                    catch (OllamaException ex)
                    {
                        failure = ex;
                        throw;
                    }
                    catch (Exception ex) when (ex is IOException or HttpRequestException && !ct.IsCancellationRequested)
                    {
                        throw failure = new OllamaServerException(Endpoint, null,
                            "the connection broke while the model was answering; retry the request", ex);
                    }

                    var chunk = lines.Current;
                    timeouts.LineReceived();
                    if (timing.TimeToFirstToken is null && HasOutput(chunk))
                        timing.MarkFirstToken();
                    if (chunk.Done)
                        final = chunk;

                    // The consumer's own time (e.g. writing to a slow client) must not count as a model stall.
                    timeouts.Pause();
                    yield return chunk;
                    timeouts.Resume();
                    if (chunk.Done)
                        break;
                }
            }

            if (final is null)
                throw failure = new OllamaServerException(Endpoint, null,
                    "the model server closed the stream before it finished (no final 'done' line); retry the request");
        }
        finally
        {
            RecordCall(activity, chatRequest.Model, timing, final, failure, ct.IsCancellationRequested);
        }
    }

    private static bool HasOutput(OllamaChatChunk chunk) =>
        chunk.Message is { } m && (m.Content.Length > 0 || !string.IsNullOrEmpty(m.Thinking) || m.ToolCalls is { Count: > 0 });

    private Activity? StartChatActivity(string model)
    {
        var activity = LabTelemetry.ActivitySource.StartActivity($"chat {model}", ActivityKind.Client);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("gen_ai.operation.name", "chat");
            activity.SetTag("gen_ai.system", "ollama");
            activity.SetTag("gen_ai.request.model", model);
            activity.SetTag("server.address", Endpoint.Host);
            activity.SetTag("server.port", Endpoint.Port);
            if (LabTelemetry.NodeOf(activity.Parent) is { } node)
                activity.SetTag(AgentLabExecution.NodeKey, node);
        }
        return activity;
    }

    private void RecordCall(Activity? activity, string model, ChatTiming timing, OllamaChatChunk? final, Exception? failure, bool callerCancelled)
    {
        var elapsed = timing.Elapsed;
        var modelTag = new KeyValuePair<string, object?>("gen_ai.request.model", model);
        LabTelemetry.OperationDuration.Record(elapsed.TotalSeconds, modelTag,
            new KeyValuePair<string, object?>("error.type", failure?.GetType().Name ?? (final is null ? "cancelled" : null)));
        if (timing.TimeToFirstToken is { } ttft)
            LabTelemetry.TimeToFirstToken.Record(ttft.TotalSeconds, modelTag);

        if (final is not null)
        {
            var input = final.PromptEvalCount ?? 0;
            var output = final.EvalCount ?? 0;
            LabTelemetry.Tokens.Add(input, modelTag, new KeyValuePair<string, object?>("gen_ai.token.type", "input"));
            LabTelemetry.Tokens.Add(output, modelTag, new KeyValuePair<string, object?>("gen_ai.token.type", "output"));
            if (activity is not null)
            {
                activity.SetTag("gen_ai.response.model", final.Model ?? model);
                activity.SetTag("gen_ai.usage.input_tokens", input);
                activity.SetTag("gen_ai.usage.output_tokens", output);
                activity.SetTag("gen_ai.response.finish_reasons", new[] { final.DoneReason ?? "stop" });
            }
            _logger.ModelCallFinished(model, final.DoneReason, elapsed.TotalMilliseconds,
                timing.TimeToFirstToken?.TotalMilliseconds ?? 0, input, output);
        }
        else if (failure is not null)
        {
            activity?.SetStatus(ActivityStatusCode.Error, failure.GetType().Name);
            activity?.SetTag("error.type", failure.GetType().Name);
            _logger.ModelCallFailed(model, elapsed.TotalMilliseconds, failure.GetType().Name, failure.Message);
        }
        else
        {
            // Caller cancellation (client disconnect) or the consumer stopped early.
            activity?.SetStatus(ActivityStatusCode.Error, callerCancelled ? "cancelled" : "abandoned");
            activity?.SetTag("error.type", "cancelled");
            _logger.ModelCallCancelled(model, elapsed.TotalMilliseconds);
        }
    }

    // ---------------------------------------------------------------- the send funnel

    /// <summary>
    /// The one place every request goes through: maps transport failures and non-success statuses to typed
    /// exceptions. No retries here, ever: a generation is not idempotent.
    /// </summary>
    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, string? model, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            throw new OllamaUnavailableException(Endpoint, DescribeTransportError(ex), ex);
        }
        catch (OperationCanceledException ex) when (!ct.IsCancellationRequested)
        {
            // Nobody cancelled us: SocketsHttpHandler's ConnectTimeout elapsed.
            throw new OllamaUnavailableException(Endpoint,
                $"no connection within {_options.ConnectTimeoutSeconds:0.###} s (Ollama:ConnectTimeoutSeconds)", ex);
        }

        if (response.IsSuccessStatusCode)
            return response;

        using (response)
            throw await CreateStatusExceptionAsync(response, model, ct).ConfigureAwait(false);
    }

    private async Task<OllamaException> CreateStatusExceptionAsync(HttpResponseMessage response, string? model, CancellationToken ct)
    {
        var status = (int)response.StatusCode;
        var message = await ReadErrorMessageAsync(response, ct).ConfigureAwait(false);
        return status switch
        {
            404 when model is not null && message.Contains("not found", StringComparison.OrdinalIgnoreCase)
                => new OllamaModelNotFoundException(Endpoint, model, message),
            404 => new OllamaRequestException(Endpoint, status,
                $"{message}; the path {response.RequestMessage?.RequestUri?.AbsolutePath} does not exist: is this an Ollama server?"),
            503 or 429 => new OllamaBusyException(Endpoint, status, RetryAfter(response), message),
            >= 500 => new OllamaServerException(Endpoint, status, message),
            _ => new OllamaRequestException(Endpoint, status, message),
        };
    }

    private static async Task<string> ReadErrorMessageAsync(HttpResponseMessage response, CancellationToken ct)
    {
        string body;
        try
        {
            body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            return response.ReasonPhrase ?? "no error message";
        }
        if (body.Length > 0 && body[0] == '{')
        {
            try
            {
                if (JsonSerializer.Deserialize(body, OllamaJsonContext.Default.OllamaErrorResponse)?.Error is { Length: > 0 } error)
                    return error;
            }
            catch (JsonException)
            {
                // Not Ollama's error shape: fall through to the raw text.
            }
        }
        body = body.Trim();
        if (body.Length == 0)
            return response.ReasonPhrase ?? "no error message";
        return body.Length > MaxErrorBodyChars ? body[..MaxErrorBodyChars] + "…" : body;
    }

    private static TimeSpan? RetryAfter(HttpResponseMessage response) =>
        response.Headers.RetryAfter switch
        {
            { Delta: { } delta } => delta,
            { Date: { } date } => date - DateTimeOffset.UtcNow is var d && d > TimeSpan.Zero ? d : TimeSpan.Zero,
            _ => null,
        };

    private static string DescribeTransportError(HttpRequestException ex) => ex.InnerException switch
    {
        SocketException { SocketErrorCode: SocketError.ConnectionRefused } => "connection refused",
        SocketException { SocketErrorCode: SocketError.HostNotFound or SocketError.NoData } => "unknown host",
        SocketException s => $"socket error {s.SocketErrorCode}",
        _ when ex.HttpRequestError == HttpRequestError.NameResolutionError => "unknown host",
        _ when ex.HttpRequestError == HttpRequestError.ConnectionError => "connection failed",
        _ => ex.Message,
    };

    // ---------------------------------------------------------------- NDJSON and JSON reading

    /// <summary>
    /// Reads NDJSON line by line. Every line is checked for Ollama's <c>error</c> key first: an error line throws
    /// <see cref="OllamaServerException"/> even though the status was 200.
    /// </summary>
    private async IAsyncEnumerable<T> ReadNdjsonAsync<T>(HttpResponseMessage response, JsonTypeInfo<T> typeInfo,
        [EnumeratorCancellation] CancellationToken ct) where T : class, IOllamaStreamLine
    {
        var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        var reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 8192, leaveOpen: true));
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(ct).ConfigureAwait(false);
                var buffer = result.Buffer;
                while (TryReadLine(ref buffer, out var line))
                {
                    if (ParseLine(line, typeInfo) is { } item)
                        yield return item;
                }

                if (result.IsCompleted)
                {
                    // Be lenient about a last line without its '\n'.
                    if (!buffer.IsEmpty && ParseLine(buffer, typeInfo) is { } last)
                        yield return last;
                    yield break;
                }
                if (buffer.Length > MaxLineBytes)
                    throw new OllamaServerException(Endpoint, null, $"the model server sent a line longer than {MaxLineBytes} bytes");
                reader.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
        }
    }

    private static bool TryReadLine(ref ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> line)
    {
        var newline = buffer.PositionOf((byte)'\n');
        if (newline is null)
        {
            line = default;
            return false;
        }
        line = buffer.Slice(0, newline.Value);
        buffer = buffer.Slice(buffer.GetPosition(1, newline.Value));
        return true;
    }

    private T? ParseLine<T>(ReadOnlySequence<byte> line, JsonTypeInfo<T> typeInfo) where T : class, IOllamaStreamLine
    {
        if (IsBlank(line))
            return null;
        T? item;
        try
        {
            var reader = new Utf8JsonReader(line);
            item = JsonSerializer.Deserialize(ref reader, typeInfo);
        }
        catch (JsonException ex)
        {
            throw new OllamaServerException(Endpoint, null, $"the model server sent a line that is not the expected JSON ({ex.Message})", ex);
        }
        if (item?.Error is { } error)
            throw new OllamaServerException(Endpoint, null, error);
        return item;
    }

    private static bool IsBlank(ReadOnlySequence<byte> line)
    {
        foreach (var segment in line)
        {
            foreach (var b in segment.Span)
            {
                if (b is not ((byte)' ' or (byte)'\r' or (byte)'\t'))
                    return false;
            }
        }
        return true;
    }

    private async Task<T> ReadJsonAsync<T>(HttpResponseMessage response, JsonTypeInfo<T> typeInfo, CancellationToken ct)
    {
        try
        {
            await using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            return await JsonSerializer.DeserializeAsync(stream, typeInfo, ct).ConfigureAwait(false)
                ?? throw new JsonException("the body was JSON null");
        }
        catch (JsonException ex)
        {
            throw new OllamaServerException(Endpoint, (int)response.StatusCode,
                $"{response.RequestMessage?.RequestUri?.AbsolutePath} answered with unexpected JSON ({ex.Message}); is this an Ollama server?", ex);
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            throw new OllamaUnavailableException(Endpoint, "the connection broke while reading the answer", ex);
        }
    }

    private static ByteArrayContent JsonBody<T>(T value, JsonTypeInfo<T> typeInfo)
    {
        // Serialised up front so the request has a Content-Length (no chunked upload).
        var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(value, typeInfo));
        content.Headers.ContentType = JsonMediaType;
        return content;
    }

    // ---------------------------------------------------------------- mapping between IChatClient and Ollama

    internal OllamaChatRequest BuildChatRequest(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        var ollamaOptions = new OllamaRequestOptions
        {
            Temperature = options?.Temperature,
            TopP = options?.TopP,
            TopK = options?.TopK,
            Seed = options?.Seed,
            NumPredict = options?.MaxOutputTokens,
            FrequencyPenalty = options?.FrequencyPenalty,
            PresencePenalty = options?.PresencePenalty,
            Stop = options?.StopSequences is { Count: > 0 } stop ? [.. stop] : null,
            NumCtx = _options.DefaultNumCtx,
        };
        var keepAlive = _keepAlive;
        if (options?.AdditionalProperties is { } extra)
        {
            if (extra.TryGetValue(NumCtxKey, out int numCtx) && numCtx > 0)
                ollamaOptions.NumCtx = numCtx;
            if (extra.TryGetValue(KeepAliveKey, out string? keep) && keep is not null)
                keepAlive = ParseKeepAlive(keep);
        }

        return new OllamaChatRequest
        {
            Model = string.IsNullOrWhiteSpace(options?.ModelId) ? _defaultModel : options.ModelId,
            Messages = ToOllamaMessages(messages),
            Tools = ToOllamaTools(options?.Tools),
            Format = options?.ResponseFormat switch
            {
                ChatResponseFormatJson { Schema: { } schema } => schema,
                ChatResponseFormatJson => JsonFormat,
                _ => null,
            },
            Options = ollamaOptions,
            Stream = true,
            KeepAlive = keepAlive,
        };
    }

    private static List<OllamaMessage> ToOllamaMessages(IEnumerable<ChatMessage> messages)
    {
        var result = new List<OllamaMessage>();
        Dictionary<string, string>? callNames = null;
        foreach (var message in messages)
        {
            List<string>? images = null;
            List<OllamaToolCall>? toolCalls = null;
            var text = new StringBuilder();
            foreach (var content in message.Contents)
            {
                switch (content)
                {
                    case TextContent t:
                        text.Append(t.Text);
                        break;
                    case DataContent d when d.HasTopLevelMediaType("image"):
                        (images ??= []).Add(Convert.ToBase64String(d.Data.Span));
                        break;
                    case FunctionCallContent call:
                        (callNames ??= [])[call.CallId] = call.Name;
                        (toolCalls ??= []).Add(new OllamaToolCall
                        {
                            Id = call.CallId,
                            Function = new OllamaToolCallFunction
                            {
                                Index = toolCalls.Count,
                                Name = call.Name,
                                Arguments = call.Arguments is null ? null : new Dictionary<string, object?>(call.Arguments),
                            },
                        });
                        break;
                    case FunctionResultContent fr:
                        // Ollama wants each tool result as its own role:"tool" message naming the tool.
                        result.Add(new OllamaMessage
                        {
                            Role = "tool",
                            Content = fr.Result switch
                            {
                                null => "",
                                string s => s,
                                JsonElement e => e.GetRawText(),
                                // Objects (dictionaries, records, numbers) go as JSON: ToString() would send a type name.
                                var other => JsonSerializer.Serialize(other, ToolResultJson.GetTypeInfo(other.GetType())),
                            },
                            ToolName = callNames?.GetValueOrDefault(fr.CallId),
                        });
                        break;
                }
            }
            if (text.Length == 0 && images is null && toolCalls is null && message.Contents.Count > 0)
                continue;   // a message that only carried tool results, already added above
            result.Add(new OllamaMessage
            {
                Role = message.Role.Value,
                Content = text.ToString(),
                Images = images,
                ToolCalls = toolCalls,
            });
        }
        return result;
    }

    private static List<OllamaTool>? ToOllamaTools(IList<AITool>? tools)
    {
        if (tools is not { Count: > 0 })
            return null;
        var result = new List<OllamaTool>(tools.Count);
        foreach (var tool in tools)
        {
            if (tool is AIFunctionDeclaration function)
            {
                result.Add(new OllamaTool
                {
                    Function = new OllamaToolFunction
                    {
                        Name = function.Name,
                        Description = string.IsNullOrEmpty(function.Description) ? null : function.Description,
                        Parameters = function.JsonSchema,
                    },
                });
            }
        }
        return result.Count > 0 ? result : null;
    }

    private static ChatResponseUpdate ToUpdate(OllamaChatChunk chunk, string responseId, ref bool sawToolCalls)
    {
        var contents = new List<AIContent>(2);
        if (chunk.Message is { } message)
        {
            if (!string.IsNullOrEmpty(message.Thinking))
                contents.Add(new TextReasoningContent(message.Thinking));
            if (message.Content.Length > 0)
                contents.Add(new TextContent(message.Content));
            if (message.ToolCalls is { Count: > 0 } calls)
            {
                sawToolCalls = true;
                foreach (var call in calls)
                {
                    contents.Add(new FunctionCallContent(call.Id ?? $"call_{Guid.NewGuid():N}"[..13], call.Function.Name,
                        call.Function.Arguments));
                }
            }
        }
        return new ChatResponseUpdate(ChatRole.Assistant, contents)
        {
            ModelId = chunk.Model,
            ResponseId = responseId,
            MessageId = responseId,
            RawRepresentation = chunk,
        };
    }

    private static void AddFinalMetrics(ChatResponseUpdate update, OllamaChatChunk final, ChatTiming timing, bool sawToolCalls)
    {
        update.FinishReason = sawToolCalls ? ChatFinishReason.ToolCalls : final.DoneReason switch
        {
            "length" => ChatFinishReason.Length,
            _ => ChatFinishReason.Stop,
        };
        update.Contents.Add(new UsageContent(new UsageDetails
        {
            InputTokenCount = final.PromptEvalCount ?? 0,
            OutputTokenCount = final.EvalCount ?? 0,
            TotalTokenCount = (final.PromptEvalCount ?? 0) + (final.EvalCount ?? 0),
        }));
        update.AdditionalProperties = new AdditionalPropertiesDictionary
        {
            [OllamaMetadata.TotalDurationNs] = final.TotalDuration ?? 0L,
            [OllamaMetadata.LoadDurationNs] = final.LoadDuration ?? 0L,
            [OllamaMetadata.PromptEvalDurationNs] = final.PromptEvalDuration ?? 0L,
            [OllamaMetadata.EvalDurationNs] = final.EvalDuration ?? 0L,
            [OllamaMetadata.DoneReason] = final.DoneReason ?? "stop",
            [OllamaMetadata.TimeToFirstTokenMs] = timing.TimeToFirstToken?.TotalMilliseconds ?? timing.Elapsed.TotalMilliseconds,
        };
    }

    private static JsonSerializerOptions CompactToolResultOptions()
    {
        var options = new JsonSerializerOptions(AIJsonUtilities.DefaultOptions) { WriteIndented = false };
        options.MakeReadOnly();
        return options;
    }

    private static JsonElement? ParseKeepAlive(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
            return null;
        // Ollama reads a bare number as seconds and a string as a Go duration ("10m"); "-1" only works as a number.
        return long.TryParse(value, out var seconds)
            ? JsonSerializer.SerializeToElement(seconds, OllamaJsonContext.Default.Int64)
            : JsonSerializer.SerializeToElement(value, OllamaJsonContext.Default.String);
    }
}

/// <summary>Keys of the metrics this client puts in the final update's <c>AdditionalProperties</c>.</summary>
public static class OllamaMetadata
{
    public const string TotalDurationNs = "total_duration_ns";
    public const string LoadDurationNs = "load_duration_ns";
    public const string PromptEvalDurationNs = "prompt_eval_duration_ns";
    public const string EvalDurationNs = "eval_duration_ns";
    public const string DoneReason = "done_reason";
    /// <summary>Measured by us, from before the request was sent until the first content line (double, ms).</summary>
    public const string TimeToFirstTokenMs = "time_to_first_token_ms";
}

/// <summary>Wall-clock timing of one model call, measured by us.</summary>
internal sealed class ChatTiming
{
    private long _start;
    public TimeSpan? TimeToFirstToken { get; private set; }
    public void Start() => _start = Stopwatch.GetTimestamp();
    public void MarkFirstToken() => TimeToFirstToken = Stopwatch.GetElapsedTime(_start);
    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(_start);
}

/// <summary>
/// The three phase limits of a model call as cancellation sources linked to the caller's token, so a timeout
/// cancels the HTTP request (closing the socket stops Ollama generating) and is told apart from the caller cancelling.
/// </summary>
internal sealed class PhaseTimeouts : IDisposable
{
    private readonly CancellationToken _caller;
    private readonly CancellationTokenSource _total;
    private readonly CancellationTokenSource _phase;
    private readonly CancellationTokenSource _linked;
    private readonly TimeSpan _firstToken;
    private readonly TimeSpan _idle;
    private readonly TimeSpan _totalLimit;
    private bool _sawLine;

    public PhaseTimeouts(CancellationToken caller, TimeSpan firstToken, TimeSpan idle, TimeSpan total)
    {
        _caller = caller;
        _firstToken = firstToken;
        _idle = idle;
        _totalLimit = total;
        _total = new CancellationTokenSource(total);
        _phase = new CancellationTokenSource(firstToken);
        _linked = CancellationTokenSource.CreateLinkedTokenSource(caller, _total.Token, _phase.Token);
    }

    public CancellationToken Token => _linked.Token;

    public bool TimedOut => !_caller.IsCancellationRequested && (_total.IsCancellationRequested || _phase.IsCancellationRequested);

    /// <summary>The first line ends the first-token phase; every line restarts the idle clock.</summary>
    public void LineReceived()
    {
        _sawLine = true;
        _phase.CancelAfter(_idle);
    }

    public void Pause() => _phase.CancelAfter(Timeout.InfiniteTimeSpan);

    public void Resume() => _phase.CancelAfter(_sawLine ? _idle : _firstToken);

    public OllamaTimeoutException CreateException(Uri endpoint, string model) =>
        _total.IsCancellationRequested ? new OllamaTimeoutException(endpoint, model, OllamaTimeoutPhase.Total, _totalLimit)
        : _sawLine ? new OllamaTimeoutException(endpoint, model, OllamaTimeoutPhase.Idle, _idle)
        : new OllamaTimeoutException(endpoint, model, OllamaTimeoutPhase.FirstToken, _firstToken);

    public void Dispose()
    {
        _linked.Dispose();
        _phase.Dispose();
        _total.Dispose();
    }
}
