namespace AgentLab.Backend;

/// <summary>The live streams' log messages (event ids 1730–1759), kept apart from Log.cs so parallel work merges cleanly.</summary>
internal static partial class Log
{
    [LoggerMessage(1730, LogLevel.Warning, "Cannot follow the live events of execution {ExecutionId}: reading where its stored log ends failed ({Reason}); its streams close with a resume hint and clients reconnect")]
    public static partial void StreamFeedFailed(this ILogger logger, Guid executionId, string reason);

    [LoggerMessage(1731, LogLevel.Warning, "Reading the events of execution {ExecutionId} from PostgreSQL failed ({Reason}); its live streams wait at the gap and go on once it answers (logged at most every 10 s)")]
    public static partial void StreamReadFailed(this ILogger logger, Guid executionId, string reason);

    [LoggerMessage(1732, LogLevel.Warning, "Execution {ExecutionId}: events {From}..{To} were published but are not in execution_events; streams wait at the gap rather than skip it. Events must be stored before they are published (logged at most every 10 s)")]
    public static partial void StreamEventsMissing(this ILogger logger, Guid executionId, long from, long to);

    [LoggerMessage(1733, LogLevel.Warning, "Polling PostgreSQL for watched executions failed ({Reason}); trying again at the next tick (logged at most every 10 s)")]
    public static partial void StreamPollFailed(this ILogger logger, string reason);

    [LoggerMessage(1734, LogLevel.Debug, "{Kind} stream of execution {ExecutionId} opened after seq {After}")]
    public static partial void StreamOpened(this ILogger logger, string kind, Guid executionId, long after);

    [LoggerMessage(1735, LogLevel.Debug, "{Kind} stream of execution {ExecutionId} closed ({Reason}) after seq {Last}")]
    public static partial void StreamClosed(this ILogger logger, string kind, Guid executionId, string reason, long last);

    [LoggerMessage(1736, LogLevel.Information, "Closed a {Kind} stream of execution {ExecutionId}: the client fell {Capacity} events behind (Streams:SendQueueCapacity); told to resume with last_event_id={Last}")]
    public static partial void StreamSlowConsumer(this ILogger logger, string kind, Guid executionId, int capacity, long last);

    [LoggerMessage(1737, LogLevel.Warning, "{Kind} stream of execution {ExecutionId} closed: its events could not be read from PostgreSQL ({Reason}); the client was told to resume with last_event_id={Last}")]
    public static partial void StreamReplayFailed(this ILogger logger, string kind, Guid executionId, string reason, long last);

    [LoggerMessage(1738, LogLevel.Warning, "Refused a WebSocket stream from Origin {Origin}: not in Cors:AllowedOrigins")]
    public static partial void StreamOriginRejected(this ILogger logger, string origin);

    [LoggerMessage(1739, LogLevel.Warning, "Refused a stream: {Open} are open on this replica, the limit is Streams:MaxConnections={Max}")]
    public static partial void StreamRefusedTooMany(this ILogger logger, int open, int max);

    [LoggerMessage(1740, LogLevel.Information, "Stopping: closing the open streams with a resume hint")]
    public static partial void StreamsClosingOnShutdown(this ILogger logger);
}
