namespace AgentLab.LabService.Orchestration.Runtime;

/// <summary>
/// Something a run did. <see cref="Seq"/> is per run, from 1 and gap-free; on the wire each event is one flat JSON
/// object (<c>{"seq":1,"type":"node_started","node":"analyzer",...}</c>).
/// </summary>
public abstract class GraphEvent
{
    public long Seq { get; internal set; }

    public abstract string Type { get; }
    public string? Node { get; init; }
    public DateTimeOffset Ts { get; init; }
}

public static class GraphEventTypes
{
    public const string NodeStarted = "node_started";
    public const string Token = "token";
    public const string NodeCompleted = "node_completed";
    public const string NodeFailed = "node_failed";
    public const string Log = "log";
    public const string RunCompleted = "run_completed";
}

public sealed class NodeStartedEvent : GraphEvent
{
    public override string Type => GraphEventTypes.NodeStarted;
    public int Attempt { get; init; }
    public int Step { get; init; }
}

public sealed class TokenEvent : GraphEvent
{
    public override string Type => GraphEventTypes.Token;
    public required string Text { get; init; }
}

public sealed class NodeCompletedEvent : GraphEvent
{
    public override string Type => GraphEventTypes.NodeCompleted;
    public required NodeRun Run { get; init; }
}

public sealed class NodeFailedEvent : GraphEvent
{
    public override string Type => GraphEventTypes.NodeFailed;
    public required string Code { get; init; }
    public required string Message { get; init; }
    public int Attempt { get; init; }
    public bool WillRetry { get; init; }
}

public sealed class LogEvent : GraphEvent
{
    public override string Type => GraphEventTypes.Log;
    public required string Level { get; init; }
    public required string Message { get; init; }
}

/// <summary>Always the last event of a run, whatever the stop reason.</summary>
public sealed class RunCompletedEvent : GraphEvent
{
    public override string Type => GraphEventTypes.RunCompleted;
    public required GraphRunResult Result { get; init; }
}
