using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using AgentLab.Backend.Data;
using AgentLab.Backend.Streams;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Events;

/// <summary>What the hub has done since start, for tests, health and benchmarks.</summary>
/// <param name="Feeds">Executions with local subscribers now.</param>
/// <param name="Subscribers">Subscribers attached now, over all feeds.</param>
/// <param name="RedisSubscriptions">Redis channel subscriptions held now: one per feed, however many subscribers.</param>
/// <param name="ViaLocal">Events delivered that were published on this replica.</param>
/// <param name="ViaRedis">Events delivered that came from Redis.</param>
/// <param name="ViaDatabase">Events delivered that were read from PostgreSQL (gaps, polls, idle checks).</param>
/// <param name="Duplicates">Events dropped because they were already delivered (a replica hears its own publish twice).</param>
/// <param name="Polls">Feeds found behind the stored log by a poll or idle check.</param>
/// <param name="SlowSubscribers">Subscribers dropped because their send queue was full.</param>
/// <param name="MaxQueued">The most events that ever waited for one subscriber.</param>
public sealed record HubCounters(int Feeds, int Subscribers, int RedisSubscriptions, long ViaLocal, long ViaRedis,
    long ViaDatabase, long Duplicates, long Polls, long SlowSubscribers, int MaxQueued);

/// <summary>
/// The replica's one fan-out point for live execution events (a singleton): a feed per execution that has local
/// subscribers (<see cref="ExecutionEventFeed"/>), each with one Redis subscription, fed also by this replica's own
/// publisher. While Redis is down or not configured it polls PostgreSQL for every watched execution
/// (<c>Streams:PollMilliseconds</c>); with Redis up it checks a feed that has been quiet for
/// <c>Streams:IdleCheckSeconds</c>, and all of them at once when Redis comes back. Polls are batched: one query per
/// tick for all the feeds due, however many there are.
/// </summary>
public sealed class ExecutionEventHub : BackgroundService
{
    private readonly object gate = new();
    private readonly ConcurrentDictionary<Guid, ExecutionEventFeed> feeds = new();
    private readonly ExecutionEventPublisher publisher;
    private readonly IServiceScopeFactory scopes;
    private readonly StreamOptions options;
    private readonly SemaphoreSlim wake = new(0, 1);
    private readonly SemaphoreSlim reads;
    private int subscriberCount;
    private int redisSubscriptions;
    private int checkAll;
    private int maxQueued;
    private long viaLocal, viaRedis, viaDatabase, duplicates, polls, slow;
    private long lastFailureLog;

    public ExecutionEventHub(RedisConnection redis, ExecutionEventPublisher publisher, IServiceScopeFactory scopes,
        IOptions<StreamOptions> options, IMeterFactory meters, ILogger<ExecutionEventHub> logger)
    {
        Redis = redis;
        this.publisher = publisher;
        this.scopes = scopes;
        this.options = options.Value;
        Logger = logger;
        // A reconnect storm (a replica restarted under 1,000 clients) must not take every pooled connection the
        // runs need to write their events: streams read through a few at a time.
        reads = new SemaphoreSlim(this.options.MaxConcurrentReads);
        DescribeMetrics(meters.Create(MeterName));
        publisher.Local += OnLocal;
        redis.Restored += OnRedisRestored;
        redis.Lost += OnRedisLost;
    }

    /// <summary>The hub's meter (exported with the other AgentLab meters; <c>dotnet-counters</c> sees it too).</summary>
    public const string MeterName = "AgentLab.Backend.Streams";

    internal RedisConnection Redis { get; }

    internal ILogger Logger { get; }

    internal int PageSize => options.ReplayPageSize;

    public HubCounters Counters => new(feeds.Count, Volatile.Read(ref subscriberCount), Volatile.Read(ref redisSubscriptions),
        Interlocked.Read(ref viaLocal), Interlocked.Read(ref viaRedis), Interlocked.Read(ref viaDatabase),
        Interlocked.Read(ref duplicates), Interlocked.Read(ref polls), Interlocked.Read(ref slow), Volatile.Read(ref maxQueued));

    /// <summary>Subscribers attached to the execution's feed on this replica now.</summary>
    public int SubscriberCount(Guid executionId) => feeds.TryGetValue(executionId, out var feed) ? feed.Count : 0;

    /// <summary>
    /// Attaches a subscriber to the execution's feed, starting the feed (and its Redis subscription) if it is the
    /// first. Await <see cref="EventSubscription.Ready"/>, then replay from PostgreSQL, then read the queue.
    /// <paramref name="onOverflow"/> runs (on the feed's loop; keep it short) when the subscriber is dropped as too slow.
    /// </summary>
    public EventSubscription Subscribe(Guid executionId, int capacity, Action? onOverflow = null)
    {
        var subscription = new EventSubscription(this, executionId, capacity, TimeSpan.FromSeconds(options.ReplayLagSeconds), onOverflow);
        ExecutionEventFeed? started = null;
        lock (gate)
        {
            if (!feeds.TryGetValue(executionId, out var feed))
            {
                feed = started = new ExecutionEventFeed(this, executionId);
                feeds[executionId] = feed;
            }
            feed.Add(subscription);
            subscription.Feed = feed;
            subscription.Attached = true;
            subscriberCount++;
        }
        started?.Start();
        return subscription;
    }

    /// <summary>Detaches a subscriber (idempotent); the feed stops with its last one.</summary>
    internal void Unsubscribe(EventSubscription subscription)
    {
        ExecutionEventFeed? stopped = null;
        lock (gate)
        {
            if (!subscription.Attached || subscription.Feed is not { } feed)
                return;
            subscription.Attached = false;
            subscriberCount--;
            feed.Remove(subscription);
            if (feed.Count == 0 && !feed.Ended)
            {
                feed.Ended = true;
                feeds.TryRemove(new KeyValuePair<Guid, ExecutionEventFeed>(feed.ExecutionId, feed));
                stopped = feed;
            }
        }
        stopped?.Stop();
    }

    /// <summary>The feed delivered its terminal event (or failed): it leaves the hub and completes every queue.</summary>
    internal void EndFeed(ExecutionEventFeed feed, Exception? error)
    {
        EventSubscription[] subscribers;
        lock (gate)
        {
            if (!feed.Ended)
            {
                feed.Ended = true;
                feeds.TryRemove(new KeyValuePair<Guid, ExecutionEventFeed>(feed.ExecutionId, feed));
            }
            subscribers = feed.Subscribers;
        }
        foreach (var subscriber in subscribers)
            subscriber.Complete(error);
    }

    /// <summary>A subscriber whose queue is full: dropped from its feed, told through its overflow callback.</summary>
    internal void DropSlow(EventSubscription subscription)
    {
        Interlocked.Increment(ref slow);
        subscription.MarkOverflowed();
        Unsubscribe(subscription);
    }

    internal void NoteQueueDepth(int depth)
    {
        var current = Volatile.Read(ref maxQueued);
        while (depth > current)
        {
            var seen = Interlocked.CompareExchange(ref maxQueued, depth, current);
            if (seen == current)
                return;
            current = seen;
        }
    }

    internal void CountDelivered(EventArrival arrival)
    {
        switch (arrival)
        {
            case EventArrival.Local:
                Interlocked.Increment(ref viaLocal);
                break;
            case EventArrival.Redis:
                Interlocked.Increment(ref viaRedis);
                break;
            default:
                Interlocked.Increment(ref viaDatabase);
                break;
        }
    }

    internal void CountDuplicate() => Interlocked.Increment(ref duplicates);

    internal void CountRedisSubscription(int delta) => Interlocked.Add(ref redisSubscriptions, delta);

    internal async Task<IReadOnlyList<ExecutionEvent>> ReadAfterAsync(Guid executionId, long afterSeq, CancellationToken ct, int? limit = null)
    {
        await reads.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            return await scope.ServiceProvider.GetRequiredService<ExecutionEventLog>()
                .ReadAfterAsync(executionId, afterSeq, limit ?? options.ReplayPageSize, ct).ConfigureAwait(false);
        }
        finally
        {
            reads.Release();
        }
    }

    internal async Task<Dictionary<Guid, long>> ReadTailsAsync(IReadOnlyCollection<Guid> ids, CancellationToken ct)
    {
        await reads.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            return await EventLogTail.ReadAsync(scope.ServiceProvider.GetRequiredService<AgentLabDb>(), ids, ct).ConfigureAwait(false);
        }
        finally
        {
            reads.Release();
        }
    }

    /// <summary>
    /// The execution's status (null when there is none, or when <paramref name="owner"/> is given and owns it not),
    /// read under the same limit as the event reads: one query on the stream's connect path.
    /// </summary>
    internal async Task<string?> ReadStatusAsync(Guid executionId, CancellationToken ct, string? owner = null)
    {
        await reads.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AgentLabDb>();
            var execution = db.Executions.AsNoTracking().Where(e => e.Id == executionId);
            if (owner is not null)
                execution = execution.Where(e => e.Owner == owner);
            return await execution.Select(e => e.Status).FirstOrDefaultAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            reads.Release();
        }
    }

    internal void NoteReadFailed(Guid executionId, Exception ex)
    {
        if (ShouldLog())
            Logger.StreamReadFailed(executionId, DatabaseErrors.Describe(ex));
    }

    internal void NoteMissing(Guid executionId, long from, long before)
    {
        if (ShouldLog())
            Logger.StreamEventsMissing(executionId, from, before - 1);
    }

    /// <summary>At most one warning per ten seconds: an outage would otherwise log once per event per feed.</summary>
    private bool ShouldLog()
    {
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref lastFailureLog);
        return now - last > 10_000 && Interlocked.CompareExchange(ref lastFailureLog, now, last) == last;
    }

    private void DescribeMetrics(Meter meter)
    {
        meter.CreateObservableUpDownCounter("agentlab.streams.subscribers", () => Volatile.Read(ref subscriberCount),
            description: "Stream subscribers attached on this replica");
        meter.CreateObservableUpDownCounter("agentlab.streams.feeds", () => feeds.Count,
            description: "Executions with local subscribers (each holds one Redis subscription)");
        meter.CreateObservableCounter("agentlab.streams.events", () => new[]
        {
            new Measurement<long>(Interlocked.Read(ref viaLocal), new KeyValuePair<string, object?>("arrival", "local")),
            new Measurement<long>(Interlocked.Read(ref viaRedis), new KeyValuePair<string, object?>("arrival", "redis")),
            new Measurement<long>(Interlocked.Read(ref viaDatabase), new KeyValuePair<string, object?>("arrival", "database")),
        }, description: "Events delivered to feeds, by how they arrived");
        meter.CreateObservableCounter("agentlab.streams.slow_subscribers", () => Interlocked.Read(ref slow),
            description: "Subscribers closed because their send queue overflowed");
    }

    private void OnLocal(EventMessage message)
    {
        if (feeds.TryGetValue(message.Event.ExecutionId, out var feed))
            feed.PostLocal(message);
    }

    private void OnRedisRestored()
    {
        // What was published while Redis was away is only in PostgreSQL: read it now, not at the next idle check.
        Volatile.Write(ref checkAll, 1);
        foreach (var feed in feeds.Values)
            feed.RequestResubscribe();
        Wake();
    }

    private void OnRedisLost() => Wake();

    private void Wake()
    {
        try
        {
            if (wake.CurrentCount == 0)
                wake.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already awake.
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var tick = TimeSpan.FromMilliseconds(options.PollMilliseconds);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await wake.WaitAsync(tick, stoppingToken).ConfigureAwait(false);
                await CheckFeedsAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex) when (DatabaseErrors.IsUnavailable(ex))
            {
                if (ShouldLog())
                    Logger.StreamPollFailed(DatabaseErrors.Describe(ex));
            }
        }
    }

    /// <summary>One batched look at where the watched logs end; feeds found behind read what they missed.</summary>
    private async Task CheckFeedsAsync(CancellationToken ct)
    {
        if (feeds.IsEmpty)
            return;
        var all = Interlocked.Exchange(ref checkAll, 0) == 1 || !Redis.IsConnected;
        var now = Environment.TickCount64;
        var idle = options.IdleCheckSeconds * 1000L;
        var due = feeds.Values.Where(f => f.Ready.IsCompletedSuccessfully && (all || now - f.LastActivity >= idle)).ToList();
        if (due.Count == 0)
            return;
        var tails = await ReadTailsAsync(due.Select(f => f.ExecutionId).ToList(), ct).ConfigureAwait(false);
        foreach (var feed in due)
        {
            feed.MarkChecked(now);
            if (tails.GetValueOrDefault(feed.ExecutionId) > feed.Last)
            {
                Interlocked.Increment(ref polls);
                feed.RequestCatchUp();
            }
        }
    }

    public override void Dispose()
    {
        publisher.Local -= OnLocal;
        Redis.Restored -= OnRedisRestored;
        Redis.Lost -= OnRedisLost;
        foreach (var feed in feeds.Values)
            feed.Stop();
        wake.Dispose();
        reads.Dispose();
        base.Dispose();
    }
}
