using System.Text;
using System.Text.Json;
using AgentLab.LabService.Orchestration.Runtime;
using Microsoft.Extensions.AI;

namespace AgentLab.LabService.Orchestration.LabGraph;

/// <summary>The lab graph's worker names and the keys they pass on in the state.</summary>
public static class LabWorkers
{
    public const string Analyzer = "analyzer";
    public const string Executor = "executor";
    public const string Validator = "validator";
    public const string Monitor = "monitor";

    public static IReadOnlyList<string> All { get; } = [Analyzer, Executor, Validator, Monitor];

    // State values.
    public const string FixHintKey = "fix_hint";
    public const string ReasonsKey = "reasons";

    internal static ChatOptions Options(LabGraphSettings settings) => new()
    {
        ModelId = settings.Model,
        Temperature = settings.Temperature,
        MaxOutputTokens = settings.MaxTokens,
        Seed = settings.Seed,
        AdditionalProperties = settings.NumCtx is { } numCtx ? new() { [Ollama.OllamaClient.NumCtxKey] = numCtx } : null,
    };

    internal static Dictionary<string, string?> Values(GraphState state) => new(StringComparer.Ordinal)
    {
        ["task"] = state.Input,
        ["plan"] = state.OutputOf(Analyzer) ?? "(no plan: work directly from the task)",
        ["answer"] = state.OutputOf(Executor),
        ["fix_hint"] = state.Values.GetValueOrDefault(FixHintKey),
        ["reasons"] = state.Values.GetValueOrDefault(ReasonsKey),
    };
}

/// <summary>Reads the task and writes a plan with success criteria.</summary>
public sealed class AnalyzerNode(Prompt prompt, LabGraphSettings settings) : ILabNode
{
    public string Name => LabWorkers.Analyzer;

    public async ValueTask<NodeResult> RunAsync(GraphState state, NodeContext ctx, CancellationToken ct)
    {
        ctx.Metrics.PromptVersion = prompt.Version;
        List<ChatMessage> messages =
        [
            new(ChatRole.System, prompt.System),
            new(ChatRole.User, prompt.Render("User", LabWorkers.Values(state))),
        ];
        var response = await ctx.ChatClient.GetResponseAsync(messages, LabWorkers.Options(settings), ct).ConfigureAwait(false);
        return new NodeResult(response.Text.Trim());
    }
}

/// <summary>
/// Carries out the plan; on a revision it also sees its previous answer and the validator's hint. Runs the tool
/// loop: each tool call the model makes is invoked and its result sent back, until the model answers in text.
/// </summary>
public sealed class ExecutorNode(Prompt prompt, LabGraphSettings settings, IReadOnlyList<AITool> tools) : ILabNode
{
    /// <summary>Most model round trips with tool calls in one execution (the run's budget bounds it too).</summary>
    public const int MaxToolRounds = 8;

    public string Name => LabWorkers.Executor;

    public async ValueTask<NodeResult> RunAsync(GraphState state, NodeContext ctx, CancellationToken ct)
    {
        ctx.Metrics.PromptVersion = prompt.Version;
        var values = LabWorkers.Values(state);
        var user = new StringBuilder(prompt.Render("User", values));
        if (state.RunCount(LabWorkers.Executor) > 0)
            user.Append("\n\n").Append(prompt.Render("Revision", values));
        List<ChatMessage> messages = [new(ChatRole.System, prompt.System), new(ChatRole.User, user.ToString())];
        var options = LabWorkers.Options(settings);
        if (tools.Count > 0)
            options.Tools = [.. tools];

        for (var round = 0; ; round++)
        {
            var response = await ctx.ChatClient.GetResponseAsync(messages, options, ct).ConfigureAwait(false);
            var calls = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().ToList();
            if (calls.Count == 0 || round >= MaxToolRounds)
                return new NodeResult(response.Text.Trim());

            messages.AddRange(response.Messages);
            var results = new List<AIContent>(calls.Count);
            foreach (var call in calls)
                results.Add(await InvokeAsync(call, ctx, ct).ConfigureAwait(false));
            messages.Add(new ChatMessage(ChatRole.Tool, results));
        }
    }

    private async Task<FunctionResultContent> InvokeAsync(FunctionCallContent call, NodeContext ctx, CancellationToken ct)
    {
        ctx.RecordToolCall();
        if (tools.OfType<AIFunction>().FirstOrDefault(t => t.Name == call.Name) is not { } function)
        {
            ctx.Log("warning", $"The model called '{call.Name}', which is not an enabled tool.");
            return new FunctionResultContent(call.CallId, $"error: there is no tool named '{call.Name}'");
        }
        try
        {
            var result = await function.InvokeAsync(new AIFunctionArguments(call.Arguments), ct).ConfigureAwait(false);
            ctx.Log("information", $"Tool {call.Name} answered.");
            return new FunctionResultContent(call.CallId, result);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // A tool's failure is information for the model, not a failure of the run.
            ctx.Log("warning", $"Tool {call.Name} failed: {ex.Message}");
            return new FunctionResultContent(call.CallId, $"error: {ex.Message}");
        }
    }
}

/// <summary>A validator's structured verdict.</summary>
public sealed record Verdict(string Value, IReadOnlyList<string> Reasons, string? FixHint)
{
    public const string Pass = "pass";
    public const string Revise = "revise";
    public const string Fail = "fail";

    /// <summary>Parses the model's JSON; the error says what was wrong, for the one retry.</summary>
    public static Verdict? TryParse(string text, out string error)
    {
        error = "";
        try
        {
            using var doc = JsonDocument.Parse(text);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                return Invalid("the reply is not a JSON object", out error);
            if (!root.TryGetProperty("verdict", out var v) || v.ValueKind != JsonValueKind.String
                || v.GetString()?.Trim().ToLowerInvariant() is not ({ } value and (Pass or Revise or Fail)))
                return Invalid("'verdict' must be one of pass, revise, fail", out error);
            var reasons = root.TryGetProperty("reasons", out var r) && r.ValueKind == JsonValueKind.Array
                ? r.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText()).ToList()
                : [];
            var hint = root.TryGetProperty("fix_hint", out var h) && h.ValueKind == JsonValueKind.String ? h.GetString() : null;
            return new Verdict(value, reasons, hint);
        }
        catch (JsonException ex)
        {
            return Invalid($"not valid JSON: {ex.Message}", out error);
        }
    }

    private static Verdict? Invalid(string message, out string error)
    {
        error = message;
        return null;
    }
}

/// <summary>
/// Checks the executor's answer and returns a verdict as JSON constrained by Ollama's <c>format</c> schema. A
/// malformed verdict is asked for once more; a second one stops the run with <c>invalid_verdict</c>.
/// </summary>
public sealed class ValidatorNode(Prompt prompt, LabGraphSettings settings) : ILabNode
{
    public static JsonElement VerdictSchema { get; } = JsonDocument.Parse("""
        {
          "type": "object",
          "properties": {
            "verdict": { "type": "string", "enum": ["pass", "revise", "fail"] },
            "reasons": { "type": "array", "items": { "type": "string" } },
            "fix_hint": { "type": "string" }
          },
          "required": ["verdict", "reasons", "fix_hint"]
        }
        """).RootElement.Clone();

    public string Name => LabWorkers.Validator;

    public async ValueTask<NodeResult> RunAsync(GraphState state, NodeContext ctx, CancellationToken ct)
    {
        ctx.Metrics.PromptVersion = prompt.Version;
        var values = LabWorkers.Values(state);
        List<ChatMessage> messages = [new(ChatRole.System, prompt.System), new(ChatRole.User, prompt.Render("User", values))];
        var options = LabWorkers.Options(settings);
        // max_tokens is for the answer: a verdict cut short is malformed JSON, so the validator is not limited by it.
        options.MaxOutputTokens = null;
        // OllamaClient sends a JSON-schema response format as Ollama's "format".
        options.ResponseFormat = ChatResponseFormat.ForJsonSchema(VerdictSchema, "verdict");

        string error = "";
        for (var ask = 1; ask <= 2; ask++)
        {
            var response = await ctx.ChatClient.GetResponseAsync(messages, options, ct).ConfigureAwait(false);
            if (Verdict.TryParse(response.Text, out error) is { } verdict)
            {
                return new NodeResult(response.Text.Trim(), verdict.Value, new Dictionary<string, string>
                {
                    [LabWorkers.FixHintKey] = verdict.FixHint ?? "",
                    [LabWorkers.ReasonsKey] = string.Join("; ", verdict.Reasons),
                });
            }
            ctx.Log("warning", ask == 1 ? $"The validator's verdict was malformed ({error}); asking once more."
                : $"The validator's verdict was malformed again ({error}).");
            messages.Add(new ChatMessage(ChatRole.Assistant, response.Text));
            messages.Add(new ChatMessage(ChatRole.User, prompt.Render("Retry", new Dictionary<string, string?> { ["error"] = error })));
        }
        throw new GraphStopException(StopCodes.InvalidVerdict,
            $"The validator did not return a valid verdict twice ({error}). Try a model that supports JSON output well.");
    }
}
