using StackExchange.Redis;

namespace AgentLab.Backend.Events;

/// <summary>One published event with its wire bytes (serialized once, shared by every subscriber).</summary>
public readonly record struct EventMessage(ExecutionEvent Event, ReadOnlyMemory<byte> Utf8);

/// <summary>
/// Publishes events that are already stored in PostgreSQL: on this replica at once (<see cref="Local"/>), and on the
/// execution's Redis channel for the other replicas. Publishing never throws and never waits: Redis pub/sub is
/// at-most-once anyway, and a subscriber that misses an event (Redis down, a gap in seq) reads it from PostgreSQL.
/// Call it only after the transaction that stored the events committed, in seq order.
/// </summary>
public sealed class ExecutionEventPublisher(RedisConnection redis, ILogger<ExecutionEventPublisher> logger)
{
    private long lastFailureLog;

    /// <summary>In-process delivery to this replica's subscribers, which then do not depend on Redis.</summary>
    public event Action<EventMessage>? Local;

    public void Publish(ExecutionEvent e)
    {
        var message = new EventMessage(e, ExecutionEventJson.ToUtf8(e));
        Local?.Invoke(message);
        if (redis.Subscriber is not { } subscriber)
            return;
        try
        {
            // Commands on one connection keep their order, so fire-and-forget publishes arrive in seq order.
            subscriber.Publish(EventChannels.ForExecution(e.ExecutionId), message.Utf8.ToArray(), CommandFlags.FireAndForget);
        }
        catch (Exception ex) when (ex is RedisException or ObjectDisposedException or TimeoutException)
        {
            // Once per ten seconds at most: an outage would otherwise log once per token.
            var now = Environment.TickCount64;
            var last = Interlocked.Read(ref lastFailureLog);
            if (now - last > 10_000 && Interlocked.CompareExchange(ref lastFailureLog, now, last) == last)
                logger.RedisPublishFailed(e.ExecutionId, ex.Message);
        }
    }

    public void Publish(IEnumerable<ExecutionEvent> events)
    {
        foreach (var e in events)
            Publish(e);
    }
}
