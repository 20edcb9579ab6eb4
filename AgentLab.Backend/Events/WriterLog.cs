namespace AgentLab.Backend;

/// <summary>
/// The write side of the event log and cancel (ids 1710–1729). Kept in their own part of <see cref="Log"/> so the
/// helpers working on issue 6 in parallel do not edit the same lines.
/// </summary>
internal static partial class Log
{
    [LoggerMessage(1710, LogLevel.Debug, "Execution {ExecutionId}: its row is no longer running under this replica (cancelled, finished or taken over); {Dropped} event(s) not stored, and the run stops")]
    public static partial void EventJournalLeaseLost(this ILogger logger, Guid executionId, int dropped);

    [LoggerMessage(1711, LogLevel.Warning, "Execution {ExecutionId}: storing its events failed ({Reason}); the run stops, and is taken over when its lease lapses")]
    public static partial void EventJournalFailed(this ILogger logger, Guid executionId, string reason);

    [LoggerMessage(1712, LogLevel.Information, "Execution {ExecutionId} cancelled by request; its run on this replica stopped ({Outcome} not written)")]
    public static partial void ExecutionCancelledByRequest(this ILogger logger, Guid executionId, string outcome);

    [LoggerMessage(1713, LogLevel.Debug, "Cancel of execution {ExecutionId}: {Delivery}")]
    public static partial void CancelDelivered(this ILogger logger, Guid executionId, string delivery);

    [LoggerMessage(1714, LogLevel.Warning, "Cannot listen for cancel requests on Redis channel {Channel} ({Reason}); a cancel posted to another replica reaches this one at its next lease heartbeat instead")]
    public static partial void CancelSubscriptionFailed(this ILogger logger, string channel, string reason);

    [LoggerMessage(1715, LogLevel.Information, "Execution {ExecutionId}: the lease heartbeat found it is no longer this replica's (cancelled or taken over); stopping its run here")]
    public static partial void RunStoppedByHeartbeat(this ILogger logger, Guid executionId);
}
