using System.Diagnostics;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace AgentLab.LabService.Orchestration.Runtime;

/// <summary>
/// What a node may use while it runs: the run's chat client (counted against the budget, its text streamed as
/// <c>token</c> events), logging into the run's event stream, and its own metrics.
/// </summary>
public sealed class NodeContext
{
    private readonly RunScope _run;
    private readonly long _started = Stopwatch.GetTimestamp();

    internal NodeContext(RunScope run, string node, int attempt)
    {
        _run = run;
        Node = node;
        Attempt = attempt;
        ChatClient = new BudgetedChatClient(run.Chat, this);
    }

    public string Node { get; }
    public int Attempt { get; }

    /// <summary>The model, through the run: every call is counted and refused once a budget is spent.</summary>
    public IChatClient ChatClient { get; }

    /// <summary>Filled as the node runs; the runner sets the duration.</summary>
    public NodeMetrics Metrics { get; } = new();

    /// <summary>Once a node has streamed a token it is never retried: the caller has already seen its output.</summary>
    public bool HasProducedOutput { get; private set; }

    public RunUsage Usage => _run.Usage;
    public RunBudget Budget => _run.Budget;

    public void EmitToken(string text)
    {
        if (text.Length == 0)
            return;
        if (!HasProducedOutput)
        {
            HasProducedOutput = true;
            Metrics.TimeToFirstTokenMs = Stopwatch.GetElapsedTime(_started).TotalMilliseconds;
            _run.MarkFirstToken();
        }
        _run.Emit(new TokenEvent { Node = Node, Text = text, Ts = _run.Now });
    }

    public void Log(string level, string message) =>
        _run.Emit(new LogEvent { Node = Node, Level = level, Message = message, Ts = _run.Now });

    /// <summary>Throws <see cref="BudgetExhaustedException"/> when a budget is spent; called before every model call.</summary>
    public void EnsureBudget(bool forModelCall = false) => _run.EnsureBudget(forModelCall);

    internal void RecordCall() => Metrics.ModelCalls++;

    internal void RecordUsage(UsageDetails usage)
    {
        var input = (int)(usage.InputTokenCount ?? 0);
        var output = (int)(usage.OutputTokenCount ?? 0);
        Metrics.PromptTokens += input;
        Metrics.CompletionTokens += output;
        _run.AddTokens(input, output);
    }

    public void RecordToolCall()
    {
        Metrics.ToolCalls++;
        _run.AddToolCall();
    }
}

/// <summary>The chat client a node sees: budget check before each call, tokens streamed as events, usage counted.</summary>
internal sealed class BudgetedChatClient(IChatClient inner, NodeContext ctx) : IChatClient
{
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default) =>
        // Streamed underneath so that tokens reach the caller live and count as output for the retry rule.
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken).ConfigureAwait(false);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages,
        ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ctx.EnsureBudget(forModelCall: true);
        ctx.RecordCall();
        await foreach (var update in inner.GetStreamingResponseAsync(messages, options, cancellationToken).ConfigureAwait(false))
        {
            foreach (var content in update.Contents)
            {
                switch (content)
                {
                    case TextContent text:
                        ctx.EmitToken(text.Text);
                        break;
                    case UsageContent usage:
                        ctx.RecordUsage(usage.Details);
                        break;
                }
            }
            yield return update;
        }
    }

    public object? GetService(Type serviceType, object? serviceKey = null) => inner.GetService(serviceType, serviceKey);

    // The inner client belongs to the container.
    public void Dispose() { }
}
