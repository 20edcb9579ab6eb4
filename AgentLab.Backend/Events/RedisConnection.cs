using StackExchange.Redis;

namespace AgentLab.Backend.Events;

/// <summary>
/// The replica's one Redis connection (<c>ConnectionStrings:redis</c>), used for pub/sub only: the durable event log
/// is PostgreSQL's. It never blocks start-up and never makes a request wait: connecting and reconnecting happen in
/// the background, and while Redis is away <see cref="Subscriber"/> is null, so callers fall back at once (events
/// stay in PostgreSQL and subscribers read them from there; cancel reaches other replicas through the lease heartbeat).
/// </summary>
public sealed class RedisConnection : IAsyncDisposable
{
    private readonly ILogger<RedisConnection> logger;
    private readonly Task<ConnectionMultiplexer?> connecting;
    private ConnectionMultiplexer? multiplexer;

    public RedisConnection(IConfiguration configuration, ILogger<RedisConnection> logger)
    {
        this.logger = logger;
        var connectionString = configuration.GetConnectionString("redis");
        IsConfigured = !string.IsNullOrWhiteSpace(connectionString);
        if (!IsConfigured)
        {
            logger.RedisNotConfigured();
            connecting = Task.FromResult<ConnectionMultiplexer?>(null);
            return;
        }
        var options = ConfigurationOptions.Parse(connectionString!);
        // Start without Redis and keep trying; a half-second linear retry avoids the default policy's stuck
        // reconnects (PLATFORM.md); short timeouts, because nothing here may hold a request up.
        options.AbortOnConnectFail = false;
        options.ReconnectRetryPolicy = new LinearRetry(500);
        options.ConnectTimeout = 2000;
        options.SyncTimeout = 2000;
        options.ConnectRetry = 1;
        options.ClientName ??= "agentlab-backend";
        Endpoint = string.Join(",", options.EndPoints.Select(e => e.ToString()));
        connecting = ConnectAsync(options);
    }

    /// <summary>False when no <c>ConnectionStrings:redis</c> is set: live delivery then runs on PostgreSQL alone.</summary>
    public bool IsConfigured { get; }

    /// <summary>Where Redis is (for health and logs); empty when not configured.</summary>
    public string Endpoint { get; } = "";

    public bool IsConnected => multiplexer?.IsConnected == true;

    /// <summary>The pub/sub interface while Redis answers; null while it does not (or is not configured).</summary>
    public ISubscriber? Subscriber => multiplexer is { IsConnected: true } m ? m.GetSubscriber() : null;

    /// <summary>
    /// The multiplexer once the first connection attempt returned (connected or still retrying), for subscriptions,
    /// which the library restores by itself after a reconnect. Null when Redis is not configured.
    /// </summary>
    public Task<ConnectionMultiplexer?> Connection => connecting;

    /// <summary>Raised when the connection to Redis is lost (once per loss).</summary>
    public event Action? Lost;

    /// <summary>Raised when the connection to Redis is back, with the library's subscriptions restored.</summary>
    public event Action? Restored;

    private async Task<ConnectionMultiplexer?> ConnectAsync(ConfigurationOptions options)
    {
        try
        {
            var m = await ConnectionMultiplexer.ConnectAsync(options).ConfigureAwait(false);
            m.ConnectionFailed += (_, e) =>
            {
                if (e.ConnectionType == ConnectionType.Subscription)
                {
                    logger.RedisConnectionLost(Endpoint, e.FailureType.ToString(), e.Exception?.Message ?? "");
                    Lost?.Invoke();
                }
            };
            m.ConnectionRestored += (_, e) =>
            {
                if (e.ConnectionType == ConnectionType.Subscription)
                {
                    logger.RedisConnectionRestored(Endpoint);
                    Restored?.Invoke();
                }
            };
            multiplexer = m;
            if (!m.IsConnected)
                logger.RedisUnreachableAtStart(Endpoint);
            return m;
        }
        catch (Exception ex) when (ex is RedisException or ArgumentException or InvalidOperationException)
        {
            // A malformed connection string: say so once; the Backend still runs, on PostgreSQL alone.
            logger.RedisConnectFailed(ex, Endpoint);
            return null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        var m = await connecting.ConfigureAwait(false);
        if (m is not null)
            await m.CloseAsync(allowCommandsToComplete: false).ConfigureAwait(false);
        m?.Dispose();
    }
}
