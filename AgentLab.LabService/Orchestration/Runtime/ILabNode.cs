namespace AgentLab.LabService.Orchestration.Runtime;

/// <summary>One named step of a graph. Model access goes through <see cref="NodeContext.ChatClient"/> so the run can count it.</summary>
public interface ILabNode
{
    string Name { get; }

    ValueTask<NodeResult> RunAsync(GraphState state, NodeContext ctx, CancellationToken ct);
}

/// <summary>
/// What a node produced: its output text and, for conditional edges, an optional <see cref="Route"/> (e.g. a
/// validator's verdict). <see cref="Values"/> are merged into the state's values for later nodes.
/// </summary>
public sealed record NodeResult(string Output, string? Route = null, IReadOnlyDictionary<string, string>? Values = null);

/// <summary>A node built from a delegate; handy for small steps and tests.</summary>
public sealed class DelegateNode(string name, Func<GraphState, NodeContext, CancellationToken, ValueTask<NodeResult>> run) : ILabNode
{
    public string Name => name;

    public ValueTask<NodeResult> RunAsync(GraphState state, NodeContext ctx, CancellationToken ct) => run(state, ctx, ct);
}

/// <summary>
/// Thrown by a node to stop the whole run with a stable code (e.g. <c>invalid_verdict</c>); never retried.
/// </summary>
public class GraphStopException(string code, string message) : Exception(message)
{
    public string Code { get; } = code;
}
