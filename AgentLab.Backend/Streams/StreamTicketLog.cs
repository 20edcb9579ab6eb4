namespace AgentLab.Backend.Streams;

/// <summary>Stream tickets' log messages (event ids 1830–1839). A ticket (or its hash) never appears in them.</summary>
internal static partial class StreamTicketLog
{
    [LoggerMessage(1830, LogLevel.Debug, "Stream ticket issued to {Subject} for execution {ExecutionId}, valid {Seconds} s")]
    public static partial void StreamTicketIssued(this ILogger logger, string subject, Guid executionId, int seconds);

    [LoggerMessage(1831, LogLevel.Debug, "Stream ticket redeemed by {Subject} for execution {ExecutionId}")]
    public static partial void StreamTicketRedeemed(this ILogger logger, string subject, Guid executionId);

    [LoggerMessage(1832, LogLevel.Information, "Refused a stream ticket for {Path}: unknown, expired, already used, or minted for another execution")]
    public static partial void StreamTicketRefused(this ILogger logger, string path);
}
