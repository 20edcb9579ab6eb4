using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace AgentLab.Tests.Orchestration;

/// <summary>One scripted model answer: text chunks (streamed one by one), usage, a failure, a delay, tool calls.</summary>
public sealed record FakeReply
{
    public IReadOnlyList<string> Chunks { get; init; } = [];
    public int PromptTokens { get; init; } = 10;
    public int CompletionTokens { get; init; } = 5;

    /// <summary>Thrown after the chunks were streamed (none: before any output).</summary>
    public Exception? Failure { get; init; }
    public TimeSpan Delay { get; init; }
    public IReadOnlyList<FunctionCallContent> ToolCalls { get; init; } = [];

    public static FakeReply Text(params string[] chunks) => new() { Chunks = chunks };
    public static FakeReply Fails(Exception ex, params string[] chunksFirst) => new() { Chunks = chunksFirst, Failure = ex };
    public static FakeReply Hangs() => new() { Delay = Timeout.InfiniteTimeSpan };
    public static FakeReply CallsTool(string name, Dictionary<string, object?> args, string callId = "call-1") =>
        new() { ToolCalls = [new FunctionCallContent(callId, name, args)] };
}

/// <summary>A call the fake received.</summary>
public sealed record FakeCall(IReadOnlyList<ChatMessage> Messages, ChatOptions? Options);

/// <summary>
/// A scripted <see cref="IChatClient"/>: answers from a script (optionally per system-prompt marker), records every
/// call, and never touches a network, so graph tests need no model.
/// </summary>
public sealed class FakeChatClient : IChatClient
{
    private readonly ConcurrentQueue<FakeReply> _script = new();
    private readonly Func<FakeCall, FakeReply?>? _responder;
    private readonly ConcurrentQueue<FakeCall> _calls = new();

    public FakeChatClient(params FakeReply[] script)
    {
        foreach (var reply in script)
            _script.Enqueue(reply);
    }

    public FakeChatClient(Func<FakeCall, FakeReply?> responder) => _responder = responder;

    public IReadOnlyList<FakeCall> Calls => [.. _calls];

    public void Enqueue(FakeReply reply) => _script.Enqueue(reply);

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages,
        ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var call = new FakeCall([.. messages], options);
        _calls.Enqueue(call);
        var reply = _responder?.Invoke(call)
            ?? (_script.TryDequeue(out var next) ? next : throw new InvalidOperationException("The fake model has no scripted reply left."));

        if (reply.Delay != TimeSpan.Zero)
            await Task.Delay(reply.Delay, cancellationToken);
        foreach (var chunk in reply.Chunks)
        {
            await Task.Yield();
            cancellationToken.ThrowIfCancellationRequested();
            yield return new ChatResponseUpdate(ChatRole.Assistant, chunk);
        }
        if (reply.Failure is { } failure)
            throw failure;
        if (reply.ToolCalls.Count > 0)
            yield return new ChatResponseUpdate(ChatRole.Assistant, [.. reply.ToolCalls]);
        yield return new ChatResponseUpdate(ChatRole.Assistant,
            [new UsageContent(new UsageDetails { InputTokenCount = reply.PromptTokens, OutputTokenCount = reply.CompletionTokens })])
        {
            FinishReason = reply.ToolCalls.Count > 0 ? ChatFinishReason.ToolCalls : ChatFinishReason.Stop,
        };
    }

    public object? GetService(Type serviceType, object? serviceKey = null) => serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose() { }
}
