using System.ComponentModel.DataAnnotations;

namespace AgentLab.Backend.Security.RateLimiting;

/// <summary>
/// How much one caller may ask for (section <c>RateLimits</c>). Request limits are counted per fixed one-minute
/// window, in Redis when it is configured (so they hold across replicas), else (or while Redis is away) in each
/// replica's memory. Health and readiness probes are never limited.
/// </summary>
public sealed class RateLimitOptions
{
    public const string Section = "RateLimits";

    /// <summary>Turns request limits off (the concurrent-executions cap stays; set it high to lift it).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Requests per minute of one authenticated subject (the token's <c>sub</c>), over every endpoint. 10 per second: a
    /// browser UI that watches runs also refreshes history and metrics; the expensive call has its own limit below.
    /// </summary>
    [Range(1, 10_000_000)] public int PerSubjectPerMinute { get; set; } = 600;

    /// <summary>Requests per minute from one client address (IPv6: one /64), authenticated or not.</summary>
    [Range(1, 10_000_000)] public int PerIpPerMinute { get; set; } = 1200;

    /// <summary><c>POST /api/v1/execute</c> per minute of one subject: each one costs model time.</summary>
    [Range(1, 10_000_000)] public int ExecutionsPerSubjectPerMinute { get; set; } = 30;

    /// <summary>Queued + running executions one subject may have at once, counted in PostgreSQL (all replicas).</summary>
    [Range(1, 1_000_000)] public int MaxConcurrentExecutionsPerSubject { get; set; } = 4;

    /// <summary>Retry-After for <c>too_many_executions</c>: when one of the caller's runs may have finished.</summary>
    [Range(1, 3600)] public int ConcurrentExecutionsRetryAfterSeconds { get; set; } = 5;

    /// <summary>
    /// How long a request waits for Redis's count before it is counted in this replica instead. A request never
    /// waits longer than this on Redis.
    /// </summary>
    [Range(1, 5000)] public int RedisTimeoutMilliseconds { get; set; } = 100;

    /// <summary>After Redis failed or was slow, how long counting stays in process before Redis is tried again.</summary>
    [Range(1, 600)] public int RedisRetrySeconds { get; set; } = 5;

    /// <summary>Prefix of the counters' keys in Redis (<c>{prefix}:{limit}:{who}:{window}</c>).</summary>
    [Required, RegularExpression(@"^[A-Za-z0-9:_\-\.]{1,100}$")] public string RedisKeyPrefix { get; set; } = "agentlab:ratelimit";
}
