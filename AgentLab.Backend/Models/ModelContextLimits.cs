using System.Text;
using System.Text.Json;
using AgentLab.Backend.Executions;
using AgentLab.Backend.Lab;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Models;

/// <summary>
/// Refuses, before anything is recorded, a prompt that cannot fit the context window of the model it would run on:
/// Ollama silently cuts such a prompt, and the answer is then about a text the caller never sent. The window is
/// <c>parameters.num_ctx</c> when given, else the <c>num_ctx</c> LabService sends by default (its
/// <c>Ollama:DefaultNumCtx</c>), never more than the model's <c>context_length</c>; both come from LabService's
/// <c>GET /models/</c>, cached for <see cref="ExecutionOptions.ModelCacheSeconds"/>. This check only guards: when the
/// list cannot be had, or the model is not in it, the request goes on unchecked (LabService answers for the model).
/// </summary>
public sealed class ModelContextLimits(IServiceProvider services, IOptions<ExecutionOptions> options, TimeProvider time,
    ILogger<ModelContextLimits> logger)
{
    /// <summary>How long a failed lookup is remembered: while LabService is away, requests do not each pay for one.</summary>
    public static readonly TimeSpan FailureBackoff = TimeSpan.FromSeconds(10);

    /// <summary>UTF-8 bytes counted as one token (a deliberately simple estimate; English averages ~4 characters a token).</summary>
    public const int BytesPerToken = 4;

    public const string PromptTooLongCode = "prompt_too_long";
    public const string NumCtxTooLargeCode = "num_ctx_too_large";

    private readonly Lock _gate = new();
    private ModelList? _models;
    private DateTimeOffset _modelsExpire;
    private DateTimeOffset _retryAfter;
    private Task<ModelList?>? _refresh;
    private bool _failureLogged;

    /// <summary>The tokens <paramref name="text"/> is estimated at: its UTF-8 bytes / 4, rounded up.</summary>
    public static int EstimateTokens(string? text) =>
        string.IsNullOrEmpty(text) ? 0 : (int)((Encoding.UTF8.GetByteCount(text) + (long)BytesPerToken - 1) / BytesPerToken);

    /// <summary>
    /// 422 <c>prompt_too_long</c> when the prompt (and the system prompt of a simple execution) plus the
    /// <c>max_tokens</c> reserved for the answer is estimated over the smallest window of the models the execution
    /// uses (a custom graph: every node's model, a node without one runs on the execution's), 422
    /// <c>num_ctx_too_large</c> when <c>num_ctx</c> exceeds one of those models' context length; null when it fits or
    /// cannot be told.
    /// </summary>
    public async ValueTask<ProblemHttpResult?> CheckAsync(ExecutionRequest request, Graphs.GraphRecord? graph, CancellationToken ct)
    {
        if (await GetModelsAsync(ct).ConfigureAwait(false) is not { } list)
            return null;

        var runModel = string.IsNullOrWhiteSpace(request.Model) ? list.DefaultModel : request.Model.Trim();
        var numCtx = request.Parameters?.NumCtx;
        ModelInfo? smallest = null;
        var smallestWindow = int.MaxValue;
        foreach (var name in ModelsOf(graph, runModel))
        {
            if (Find(list, name) is not { } model)
                continue;
            if (numCtx > model.ContextLength)
                return NumCtxTooLarge(numCtx.Value, model);
            var window = numCtx ?? Min(list.DefaultNumCtx, model.ContextLength);
            if (window is { } w && w < smallestWindow)
            {
                smallest = model;
                smallestWindow = w;
            }
        }
        if (smallest is null)
            return null;

        // The orchestrator sends no system prompt to LabService; the simple path does.
        var simple = request.Graph is null && !ExecutionRequestReader.IsOneOf(request.ExecutionType ?? ExecutionKinds.Simple, [ExecutionKinds.Orchestrator]);
        var prompt = EstimateTokens(request.Prompt) + (simple ? EstimateTokens(request.Parameters?.System) : 0);
        var reserved = request.Parameters?.MaxTokens ?? 0;
        if ((long)prompt + reserved <= smallestWindow)
            return null;
        logger.ContextLimitRefused(PromptTooLongCode, smallest.Name, prompt + reserved, smallestWindow);
        return PromptTooLong(prompt, reserved, smallestWindow, smallest, numCtx is not null, list, simple);
    }

    /// <summary>
    /// The model a name stands for, as LabService resolves it: an alias (any case), else the tag itself, with
    /// <c>:latest</c> added to a bare name. Null when the list does not hold it.
    /// </summary>
    public static ModelInfo? Find(ModelList list, string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
            return null;
        var requested = name.Trim();
        foreach (var model in list.Models)
        {
            if (model.Aliases.Any(a => a.Equals(requested, StringComparison.OrdinalIgnoreCase)))
                return model;
        }
        var tag = requested.Contains(':', StringComparison.Ordinal) ? requested : requested + ":latest";
        return list.Models.FirstOrDefault(m => m.Name.Equals(tag, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>The models an execution calls: its own, or each node's of a custom graph (a node without one uses the execution's).</summary>
    private static IEnumerable<string?> ModelsOf(Graphs.GraphRecord? graph, string? runModel)
    {
        if (graph is null)
            return [runModel];
        var names = new HashSet<string?>(StringComparer.OrdinalIgnoreCase);
        try
        {
            using var document = JsonDocument.Parse(graph.Definition);
            if (document.RootElement.TryGetProperty("nodes", out var nodes) && nodes.ValueKind == JsonValueKind.Array)
            {
                foreach (var node in nodes.EnumerateArray())
                {
                    names.Add(node.ValueKind == JsonValueKind.Object && node.TryGetProperty("model", out var m) && m.ValueKind == JsonValueKind.String
                        ? m.GetString()
                        : runModel);
                }
            }
        }
        catch (JsonException)
        {
            // Stored definitions were validated by LabService; an unreadable one is LabService's to report.
        }
        if (names.Count == 0)
            names.Add(runModel);
        return names;
    }

    private static int? Min(int? a, int? b) => a is { } x && b is { } y ? Math.Min(x, y) : a ?? b;

    /// <summary>The cached list, a fresh one, or null when LabService could not give one lately.</summary>
    private async ValueTask<ModelList?> GetModelsAsync(CancellationToken ct)
    {
        Task<ModelList?> refresh;
        lock (_gate)
        {
            var now = time.GetUtcNow();
            if (_models is not null && now < _modelsExpire)
                return _models;
            if (now < _retryAfter)
                return null;
            // Started off the lock: the lookup's first steps (resolving the client, connecting) are not the lock's business.
            if (_refresh is null || _refresh.IsCompleted)
                _refresh = Task.Run(RefreshAsync, CancellationToken.None);
            refresh = _refresh;
        }
        // One caller giving up must not cancel the lookup the others wait for.
        return await refresh.WaitAsync(ct).ConfigureAwait(false);
    }

    private async Task<ModelList?> RefreshAsync()
    {
        var settings = options.Value;
        var timeout = TimeSpan.FromSeconds(settings.ModelLookupTimeoutSeconds);
        try
        {
            // The model-call client: one attempt, no retries. A lookup that only guards must not make a request
            // wait through a retry pipeline while LabService is down (the execution then fails on its own).
            var lab = services.GetRequiredService<LabServiceClient>();
            using var deadline = new CancellationTokenSource(timeout);
            using var message = LabHttp.Get("models/");
            using var response = await LabHttp.SendAsync(lab.Http, message, static r => r.IsSuccessStatusCode, deadline.Token).ConfigureAwait(false);
            var list = await LabHttp.ReadJsonAsync(response, LabJsonContext.Default.ModelList, deadline.Token).ConfigureAwait(false);
            lock (_gate)
            {
                _models = list;
                _modelsExpire = time.GetUtcNow().AddSeconds(settings.ModelCacheSeconds);
                _failureLogged = false;
            }
            return list;
        }
        catch (Exception ex) when (ex is LabServiceException or OperationCanceledException or HttpRequestException)
        {
            bool first;
            lock (_gate)
            {
                _retryAfter = time.GetUtcNow() + FailureBackoff;
                first = !_failureLogged;
                _failureLogged = true;
            }
            // Once per outage: every execute meanwhile would otherwise repeat it.
            if (first)
                logger.ModelListUnavailable(ex is OperationCanceledException ? $"no answer within {timeout.TotalSeconds:0.#} s" : ex.Message);
            return null;
        }
    }

    private static ProblemHttpResult NumCtxTooLarge(int numCtx, ModelInfo model) =>
        Problems.Create(StatusCodes.Status422UnprocessableEntity, NumCtxTooLargeCode, "num_ctx exceeds the model's context length",
            $"parameters.num_ctx is {numCtx}, but {model.Name} has a context length of {model.ContextLength} tokens. " +
            $"Send num_ctx of at most {model.ContextLength}, or pick a model with a larger context_length (GET /api/v1/models).",
            [new("model", model.Name), new("num_ctx", numCtx), new("context_length", model.ContextLength),
             new("errors", new Dictionary<string, string[]> { ["parameters.num_ctx"] = [$"at most {model.ContextLength} for {model.Name}"] })]);

    private static ProblemHttpResult PromptTooLong(int prompt, int reserved, int window, ModelInfo model, bool numCtxGiven, ModelList list, bool simple)
    {
        var what = simple ? "The prompt and system prompt come" : "The prompt comes";
        var reserve = reserved > 0 ? $", plus max_tokens {reserved} reserved for the answer, {prompt + (long)reserved} in all" : "";
        string source, advice;
        if (numCtxGiven)
        {
            source = "parameters.num_ctx";
            advice = model.ContextLength is { } length && length > window
                ? $" Raise num_ctx (up to {length} for this model),"
                : " Use a model with a larger context_length (GET /api/v1/models),";
        }
        else
        {
            source = model.ContextLength is { } length && list.DefaultNumCtx is { } d && d < length
                ? "LabService's default num_ctx (Ollama:DefaultNumCtx)"
                : "its context length";
            advice = model.ContextLength is { } l && l > window
                ? $" Send parameters.num_ctx (up to {l} for this model),"
                : " Use a model with a larger context_length (GET /api/v1/models),";
        }
        return Problems.Create(StatusCodes.Status422UnprocessableEntity, PromptTooLongCode, "The prompt does not fit the model's context window",
            $"{what} to about {prompt} tokens (estimated as UTF-8 bytes / {BytesPerToken}){reserve}; the context window of {model.Name} " +
            $"is {window} tokens ({source}). The model server would silently drop the start of the prompt.{advice} " +
            (reserved > 0 ? "lower max_tokens, or shorten the prompt." : "or shorten the prompt."),
            [new("model", model.Name), new("estimated_tokens", prompt), new("reserved_tokens", reserved), new("context_window", window)]);
    }
}
