using System.ComponentModel.DataAnnotations;

namespace AgentLab.Backend.Streams;

/// <summary>Live event streams over WebSocket and SSE, and the per-replica hub behind them (section <c>Streams</c>).</summary>
public sealed class StreamOptions
{
    public const string Section = "Streams";

    /// <summary>While Redis is down or not configured, how often watched executions are read from PostgreSQL.</summary>
    [Range(20, 60_000)]
    public int PollMilliseconds { get; set; } = 500;

    /// <summary>
    /// With Redis up, a watched execution that has been quiet this long is read from PostgreSQL once (catches what was
    /// published while Redis was away, such as a lost terminal event).
    /// </summary>
    [Range(1, 3600)]
    public int IdleCheckSeconds { get; set; } = 5;

    /// <summary>WebSocket keep-alive ping and SSE comment interval; proxies commonly cut idle connections at 60 s.</summary>
    [Range(1, 3600)]
    public int HeartbeatSeconds { get; set; } = 15;

    /// <summary>Events waiting to be sent to one connection; a client that falls this far behind is closed with a resume hint.</summary>
    [Range(1, 1_000_000)]
    public int SendQueueCapacity { get; set; } = 256;

    /// <summary>
    /// A subscriber still replaying when its queue fills is not dropped at once (it reads the overflow from PostgreSQL
    /// afterwards); one that stays that far behind for this long is closed as too slow.
    /// </summary>
    [Range(1, 3600)]
    public int ReplayLagSeconds { get; set; } = 30;

    /// <summary>PostgreSQL reads the streams make at once (replays, gap reads, polls, lookups), so a reconnect storm cannot take the pool from the runs.</summary>
    [Range(1, 1000)]
    public int MaxConcurrentReads { get; set; } = 16;

    /// <summary>Clients are not expected to send anything; a WebSocket message larger than this is closed with 1009.</summary>
    [Range(1, 16 * 1024 * 1024)]
    public int MaxClientMessageBytes { get; set; } = 4096;

    /// <summary>Streams open at once on this replica; more are refused with 503 <c>too_many_streams</c>.</summary>
    [Range(1, 10_000_000)]
    public int MaxConnections { get; set; } = 20_000;

    /// <summary>
    /// How long a close (slow consumer, shutdown, oversized message) may wait for a send the client is not reading;
    /// after that the connection is dropped, so neither memory nor shutdown waits on a stuck client.
    /// </summary>
    [Range(10, 60_000)]
    public int CloseTimeoutMilliseconds { get; set; } = 2000;

    /// <summary>Events read from PostgreSQL per query when replaying.</summary>
    [Range(1, 10_000)]
    public int ReplayPageSize { get; set; } = 500;

    /// <summary>The SSE <c>retry:</c> hint: how soon an EventSource reconnects after the stream ends.</summary>
    [Range(0, 600_000)]
    public int RetryMilliseconds { get; set; } = 1000;

    public TimeSpan Heartbeat => TimeSpan.FromSeconds(HeartbeatSeconds);
    public TimeSpan CloseTimeout => TimeSpan.FromMilliseconds(CloseTimeoutMilliseconds);
}
