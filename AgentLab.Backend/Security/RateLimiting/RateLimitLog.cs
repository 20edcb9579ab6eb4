namespace AgentLab.Backend.Security.RateLimiting;

/// <summary>Rate limiting's log messages (event ids 1820–1829). Tokens never appear; subjects and addresses may.</summary>
internal static partial class RateLimitLog
{
    [LoggerMessage(1820, LogLevel.Information,
        "Rate limits: {PerSubject}/min per subject, {PerIp}/min per client address, {Executions}/min executions per subject, {Concurrent} concurrent executions per subject; counted {Where}")]
    public static partial void RateLimitsConfigured(this ILogger logger, int perSubject, int perIp, int executions, int concurrent, string where);

    [LoggerMessage(1821, LogLevel.Warning,
        "Rate limits are counted in this replica only, not across replicas, until Redis answers again: {Reason}. Each replica now allows the full limit.")]
    public static partial void RateLimitFallback(this ILogger logger, string reason);

    [LoggerMessage(1822, LogLevel.Information, "Rate limits are counted in Redis again, across replicas")]
    public static partial void RateLimitRedisRestored(this ILogger logger);

    // Debug: a line per refused request would let a flood fill the log (the 429s show in the request metrics).
    [LoggerMessage(1823, LogLevel.Debug, "Request refused: the {Limit} limit of {Permitted}/min is reached; retry after {RetryAfterSeconds} s")]
    public static partial void RequestRateLimited(this ILogger logger, string limit, int permitted, int retryAfterSeconds);

    [LoggerMessage(1824, LogLevel.Information, "Execution refused: subject {Subject} already has {Active} queued or running (limit {Limit})")]
    public static partial void TooManyExecutions(this ILogger logger, string subject, int active, int limit);

    [LoggerMessage(1825, LogLevel.Information,
        "Forwarded headers: X-Forwarded-For is trusted from proxies {Proxies} and networks {Networks} (at most {ForwardLimit} hop(s))")]
    public static partial void ForwardedHeadersTrusted(this ILogger logger, string proxies, string networks, int forwardLimit);

    [LoggerMessage(1826, LogLevel.Warning, "Rate limits are OFF (RateLimits:Enabled=false): any caller may send any number of requests")]
    public static partial void RateLimitsDisabled(this ILogger logger);
}
