using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Threading.RateLimiting;
using AgentLab.Backend.Events;
using AgentLab.ServiceDefaults.Security;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace AgentLab.Backend.Security.RateLimiting;

/// <summary>
/// The Backend's global request limiter (<c>RateLimiterOptions.GlobalLimiter</c>): every request counts against its
/// client address, an authenticated one also against its subject, and <c>POST /api/v1/execute</c> also against the
/// subject's execution limit. Counts are fixed one-minute windows kept in Redis (<c>INCR</c> + <c>PEXPIRE</c> per
/// counter, all counters of a request in one pipelined round trip; no Lua, so it runs on Garnet and redis-server
/// alike), so they hold across replicas. When Redis is not configured, not connected, failing or slower than
/// <see cref="RateLimitOptions.RedisTimeoutMilliseconds"/>, the request is counted in this replica instead (said once
/// in the log and in <c>/api/v1/health/detailed</c>): limits never fail open and a request never waits on Redis.
/// A replica that is still making its first connection also counts in process, but that is not an outage and is not
/// logged as one.
/// </summary>
public sealed class AgentLabRateLimiter : PartitionedRateLimiter<HttpContext>
{
    public const string IpLimit = "ip";
    public const string SubjectLimit = "subject";
    public const string ExecutionsLimit = "executions";

    /// <summary>The name of the execute endpoint (<c>ExecutionsApi</c>), which has its own, stricter limit.</summary>
    public const string ExecuteEndpointName = "Execute";

    public static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    // Probes of orchestrators, load balancers and dashboards must never be refused (the detailed report needs a token).
    private static readonly string[] ExemptPaths = ["/health", "/alive", "/api/v1/health", "/api/v1/health/detailed", "/api/v1/ready"];

    private static readonly RateLimitLease Granted = new WindowLease(true, null, 0, TimeSpan.Zero);

    // AttemptAcquire cannot wait for Redis: it declines, and the middleware then calls AcquireAsync, which counts.
    private static readonly RateLimitLease NotCountedYet = new WindowLease(false, null, 0, TimeSpan.Zero);

    private readonly RateLimitOptions options;
    private readonly RedisConnection redis;
    private readonly TimeProvider time;
    private readonly ILogger<AgentLabRateLimiter> logger;
    private readonly MemoryWindowCounters memory = new();
    private readonly TimeSpan redisTimeout;
    private readonly Task warmedUp;     // the first connection attempt, then one round trip on it (see WarmUpAsync)
    private long redisRetryAt;          // UTC ticks before which counting stays in process after a Redis failure
    private int inFallback;             // 1 while counting in process although Redis is configured
    private string fallbackReason = "";
    private DateTimeOffset? fallbackSince;

    public AgentLabRateLimiter(IOptions<RateLimitOptions> options, RedisConnection redis, TimeProvider time, ILogger<AgentLabRateLimiter> logger)
    {
        this.options = options.Value;
        this.redis = redis;
        this.time = time;
        this.logger = logger;
        redisTimeout = TimeSpan.FromMilliseconds(this.options.RedisTimeoutMilliseconds);
        warmedUp = this.options.Enabled && redis.IsConfigured ? WarmUpAsync() : Task.CompletedTask;
        if (!this.options.Enabled)
        {
            logger.RateLimitsDisabled();
            return;
        }
        logger.RateLimitsConfigured(this.options.PerSubjectPerMinute, this.options.PerIpPerMinute, this.options.ExecutionsPerSubjectPerMinute,
            this.options.MaxConcurrentExecutionsPerSubject,
            redis.IsConfigured ? $"in Redis at {redis.Endpoint} (across replicas)" : "in this replica only (no ConnectionStrings:redis)");
    }

    /// <summary>Where requests are counted now, for <c>/api/v1/health/detailed</c>.</summary>
    public RateLimitState State =>
        !options.Enabled ? new(RateLimitState.Off, "Rate limits are turned off (RateLimits:Enabled=false).", null)
        : !redis.IsConfigured ? new(RateLimitState.InProcess, "Counted in this replica only: Redis is not configured, so with several replicas each allows the full limit.", null)
        : !warmedUp.IsCompleted ? new(RateLimitState.Fallback, $"Connecting to Redis at {redis.Endpoint} (the replica is starting): counted in this replica until then.", null)
        : Volatile.Read(ref inFallback) == 1 ? new(RateLimitState.Fallback, $"Redis is unavailable ({fallbackReason}): counted in each replica on its own until it is back.", fallbackSince)
        : new(RateLimitState.Shared, $"Counted in Redis at {redis.Endpoint}, across replicas.", null);

    public override RateLimiterStatistics? GetStatistics(HttpContext resource) => null;

    protected override RateLimitLease AttemptAcquireCore(HttpContext resource, int permitCount) =>
        IsLimited(resource) ? NotCountedYet : Granted;

    protected override ValueTask<RateLimitLease> AcquireAsyncCore(HttpContext resource, int permitCount, CancellationToken cancellationToken)
    {
        if (!IsLimited(resource))
            return new(Granted);

        var counters = CountersFor(resource);
        var now = time.GetUtcNow();
        var window = now.ToUnixTimeMilliseconds() / (long)Window.TotalMilliseconds;
        var retryAfter = DateTimeOffset.FromUnixTimeMilliseconds((window + 1) * (long)Window.TotalMilliseconds) - now;
        var keys = new string[counters.Length];
        for (var i = 0; i < counters.Length; i++)
            keys[i] = $"{options.RedisKeyPrefix}:{counters[i].Limit}:{counters[i].Who}:{window.ToString(CultureInfo.InvariantCulture)}";

        if (SharedCounters(now) is { } database)
            return CountInRedisAsync(database, counters, keys, window, retryAfter, cancellationToken);
        return new(CountInProcess(counters, keys, window, retryAfter));
    }

    private bool IsLimited(HttpContext context)
    {
        if (!options.Enabled)
            return false;
        var path = context.Request.Path.Value ?? "";
        if (path.Length > 1 && path[^1] == '/')
            path = path[..^1];
        foreach (var exempt in ExemptPaths)
        {
            if (string.Equals(path, exempt, StringComparison.OrdinalIgnoreCase))
                return false;
        }
        return true;
    }

    /// <summary>The counters this request increments, the most specific first (that one is named when several are full).</summary>
    private Counter[] CountersFor(HttpContext context)
    {
        var ip = new Counter(IpLimit, ClientPartition(context.Connection.RemoteIpAddress), options.PerIpPerMinute);
        if (context.User.Identity?.IsAuthenticated != true || context.User.FindFirst(AgentLabTokens.SubjectClaim)?.Value is not { Length: > 0 } subject)
            return [ip];
        var perSubject = new Counter(SubjectLimit, subject, options.PerSubjectPerMinute);
        if (HttpMethods.IsPost(context.Request.Method)
            && context.GetEndpoint()?.Metadata.GetMetadata<IEndpointNameMetadata>()?.EndpointName == ExecuteEndpointName)
        {
            return [new Counter(ExecutionsLimit, subject, options.ExecutionsPerSubjectPerMinute), perSubject, ip];
        }
        return [perSubject, ip];
    }

    /// <summary>
    /// The partition of a client address: IPv4 as is, IPv6 by its /64 (one subscriber usually holds a whole /64, so
    /// per-address counting would let it rotate freely); no address (an in-memory or Unix-socket transport) is one
    /// shared partition rather than no limit.
    /// </summary>
    public static string ClientPartition(IPAddress? address)
    {
        if (address is null)
            return "unknown";
        if (address.IsIPv4MappedToIPv6)
            address = address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
            return address.ToString();
        var bytes = address.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes) + "/64";
    }

    /// <summary>The Redis database to count in, or null to count in process (not configured, away, or recently failing).</summary>
    private IDatabase? SharedCounters(DateTimeOffset now)
    {
        if (!redis.IsConfigured)
            return null;
        if (now.UtcTicks < Volatile.Read(ref redisRetryAt))
            return null;
        if (!warmedUp.IsCompleted)
            return null;    // starting: not an outage, so no warning and no retry window; Redis counts from the first request after
        var connection = redis.Connection;
        if (!connection.IsCompletedSuccessfully || connection.Result is not { IsConnected: true } multiplexer)
        {
            Fallback(now, connection.IsCompleted ? $"not connected to {redis.Endpoint}" : $"still connecting to {redis.Endpoint}");
            return null;
        }
        return multiplexer.GetDatabase();
    }

    /// <summary>
    /// Waits for the first connection attempt, then sends one round trip of the shape requests use (a pipelined INCR
    /// and PEXPIRE) without the request bound. The first command on a fresh connection pays for JIT and first buffers
    /// and often misses the 100 ms bound: without this, a replica's first request reported a Redis outage that was not
    /// one and counted in process for the next RedisRetrySeconds. A failure here is left to the first request, which
    /// finds Redis unreachable and says so.
    /// </summary>
    private async Task WarmUpAsync()
    {
        try
        {
            if (await redis.Connection.ConfigureAwait(false) is not { IsConnected: true } multiplexer)
                return;
            var key = $"{options.RedisKeyPrefix}:warm-up";
            var batch = multiplexer.GetDatabase().CreateBatch();
            var answered = batch.StringIncrementAsync(key);
            _ = batch.KeyExpireAsync(key, Window, CommandFlags.FireAndForget);
            batch.Execute();
            await answered.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
        {
        }
    }

    private async ValueTask<RateLimitLease> CountInRedisAsync(
        IDatabase database, Counter[] counters, string[] keys, long window, TimeSpan retryAfter, CancellationToken ct)
    {
        // One pipelined batch: the INCRs are awaited, the PEXPIREs ride along unanswered. A key lives for the rest of
        // its window plus one more, so a replica whose clock is a little behind still finds it.
        var batch = database.CreateBatch();
        var counts = new Task<long>[keys.Length];
        var ttl = retryAfter + Window;
        for (var i = 0; i < keys.Length; i++)
        {
            counts[i] = batch.StringIncrementAsync(keys[i]);
            _ = batch.KeyExpireAsync(keys[i], ttl, CommandFlags.FireAndForget);
        }
        batch.Execute();
        var all = Task.WhenAll(counts);
        try
        {
            await all.WaitAsync(redisTimeout, time, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or RedisException)
        {
            // Whatever Redis does with this batch later is no longer awaited; observe it so it is not reported as unobserved.
            _ = all.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            Fallback(time.GetUtcNow(), ex is TimeoutException
                ? $"no answer from {redis.Endpoint} within {redisTimeout.TotalMilliseconds:0} ms"
                : $"{redis.Endpoint} failed: {ex.GetType().Name}");
            return CountInProcess(counters, keys, window, retryAfter);
        }
        if (Interlocked.Exchange(ref inFallback, 0) == 1)
            logger.RateLimitRedisRestored();
        return Decide(counters, [.. counts.Select(c => c.Result)], retryAfter);
    }

    private RateLimitLease CountInProcess(Counter[] counters, string[] keys, long window, TimeSpan retryAfter)
    {
        var counts = new long[keys.Length];
        for (var i = 0; i < keys.Length; i++)
            counts[i] = memory.Increment(keys[i], window);
        return Decide(counters, counts, retryAfter);
    }

    private static RateLimitLease Decide(Counter[] counters, long[] counts, TimeSpan retryAfter)
    {
        for (var i = 0; i < counters.Length; i++)
        {
            if (counts[i] > counters[i].Permitted)
                return new WindowLease(false, counters[i].Limit, counters[i].Permitted, retryAfter);
        }
        return Granted;
    }

    private void Fallback(DateTimeOffset now, string reason)
    {
        Volatile.Write(ref redisRetryAt, (now + TimeSpan.FromSeconds(options.RedisRetrySeconds)).UtcTicks);
        if (Interlocked.Exchange(ref inFallback, 1) == 0)
        {
            fallbackReason = reason;
            fallbackSince = now;
            logger.RateLimitFallback(reason);
        }
    }

    private readonly record struct Counter(string Limit, string Who, int Permitted);
}

/// <summary>Where request limits are counted: <see cref="Shared"/> (Redis), in process, or in process as a fallback.</summary>
public sealed record RateLimitState(string Mode, string Detail, DateTimeOffset? Since)
{
    public const string Shared = "redis";
    public const string InProcess = "in_process";
    public const string Fallback = "in_process_fallback";
    public const string Off = "off";
}

/// <summary>A lease that says, when refused, which limit was full and how long until its window frees.</summary>
public sealed class WindowLease(bool acquired, string? limit, int permitted, TimeSpan retryAfter) : RateLimitLease
{
    public override bool IsAcquired => acquired;

    /// <summary>The limit that refused (<c>ip</c>, <c>subject</c>, <c>executions</c>); null when granted.</summary>
    public string? Limit => limit;

    public int Permitted => permitted;

    public TimeSpan RetryAfter => retryAfter;

    public override IEnumerable<string> MetadataNames =>
        limit is null ? [] : [MetadataName.RetryAfter.Name, MetadataName.ReasonPhrase.Name];

    public override bool TryGetMetadata(string metadataName, out object? metadata)
    {
        metadata = limit is null ? null
            : metadataName == MetadataName.RetryAfter.Name ? retryAfter
            : metadataName == MetadataName.ReasonPhrase.Name ? limit
            : null;
        return metadata is not null;
    }
}
