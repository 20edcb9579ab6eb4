using System.Threading.Channels;
using AgentLab.Backend.Data;
using StackExchange.Redis;

namespace AgentLab.Backend.Events;

/// <summary>How an event reached a feed (the hub counts each kind).</summary>
public enum EventArrival
{
    /// <summary>Published on this replica (<see cref="ExecutionEventPublisher.Local"/>).</summary>
    Local,

    /// <summary>A message on the execution's Redis channel.</summary>
    Redis,

    /// <summary>Read from PostgreSQL: a gap, a poll while Redis is away, or an idle check.</summary>
    Database,
}

/// <summary>
/// The live events of one execution on this replica, for all its local subscribers: one Redis subscription however
/// many clients watch it, plus the in-process publisher. A single loop takes what arrives (in any order, twice when
/// this replica published it), keeps <see cref="Last"/>, reads a gap from PostgreSQL before going on, drops what it
/// already delivered, and hands each event, serialized once, to every subscriber's queue. It never waits for a
/// subscriber: a full queue drops that subscriber. It ends after the terminal event or when its last subscriber leaves.
/// </summary>
internal sealed class ExecutionEventFeed
{
    /// <summary>Inputs waiting for the loop; beyond this they are dropped and read back from PostgreSQL (all are stored).</summary>
    private const int InputCapacity = 4096;

    /// <summary>After a failed read, how long gaps wait before PostgreSQL is asked again (events still arrive meanwhile).</summary>
    private const int ReadRetryMilliseconds = 1000;

    private static readonly TimeSpan RedisTimeout = TimeSpan.FromSeconds(2);

    private readonly ExecutionEventHub hub;
    private readonly Channel<Input> inputs = Channel.CreateBounded<Input>(new BoundedChannelOptions(InputCapacity)
    {
        FullMode = BoundedChannelFullMode.Wait,
        SingleReader = true,
    });
    private readonly TaskCompletionSource ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource stop = new();
    private readonly RedisChannel channel;
    private readonly Action<RedisChannel, RedisValue> onRedisMessage;

    // Written under the hub's lock, read by the loop without it (copy on write).
    private EventSubscription[] subscribers = [];
    private ConnectionMultiplexer? multiplexer;
    private bool subscribedWhileConnected;
    private long last;
    private long lastActivity = Environment.TickCount64;
    private long retryReadsAt;
    private int missed;
    private bool terminal;

    public ExecutionEventFeed(ExecutionEventHub hub, Guid executionId)
    {
        this.hub = hub;
        ExecutionId = executionId;
        channel = new RedisChannel(EventChannels.ForExecution(executionId), RedisChannel.PatternMode.Literal);
        onRedisMessage = OnRedisMessage;
    }

    public Guid ExecutionId { get; }

    /// <summary>See <see cref="EventSubscription.Ready"/>.</summary>
    public Task Ready => ready.Task;

    /// <summary>The last seq delivered to subscribers (the stored tail when the feed started).</summary>
    public long Last => Volatile.Read(ref last);

    /// <summary>Set under the hub's lock once the feed left the hub (terminal event, no subscribers, failure).</summary>
    public bool Ended { get; set; }

    public int Count => subscribers.Length;

    public EventSubscription[] Subscribers => subscribers;

    /// <summary>Ticks (<see cref="Environment.TickCount64"/>) of the last event or check; the hub polls quiet feeds.</summary>
    public long LastActivity => Volatile.Read(ref lastActivity);

    public void MarkChecked(long now) => Volatile.Write(ref lastActivity, now);

    /// <summary>Under the hub's lock.</summary>
    public void Add(EventSubscription subscription) => subscribers = [.. subscribers, subscription];

    /// <summary>Under the hub's lock.</summary>
    public void Remove(EventSubscription subscription) => subscribers = Array.FindAll(subscribers, s => s != subscription);

    public void Start() => _ = Task.Run(RunAsync);

    /// <summary>Ends the loop (the last subscriber left or the replica is stopping); the Redis subscription is dropped.</summary>
    public void Stop()
    {
        inputs.Writer.TryComplete();
        try
        {
            stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The loop already finished.
        }
    }

    /// <summary>An event published on this replica.</summary>
    public void PostLocal(in EventMessage message) => Post(new Input(InputKind.Event, EventArrival.Local, message));

    /// <summary>The stored log is ahead of <see cref="Last"/> (hub poll): read it.</summary>
    public void RequestCatchUp() => Post(new Input(InputKind.CatchUp, EventArrival.Database, default));

    /// <summary>Redis is back: make sure this feed's channel is subscribed (the library restores only what it had sent).</summary>
    public void RequestResubscribe() => Post(new Input(InputKind.Resubscribe, EventArrival.Redis, default));

    private void Post(Input input)
    {
        // A full input queue means the loop is stuck on PostgreSQL: everything is stored, so note it and read it back.
        if (!inputs.Writer.TryWrite(input) && !inputs.Reader.Completion.IsCompleted)
            Volatile.Write(ref missed, 1);
    }

    private void OnRedisMessage(RedisChannel _, RedisValue value)
    {
        byte[]? bytes = value;
        // The payload is the wire form itself: parsed once for its seq, its bytes shared by every subscriber.
        if (bytes is not null && ExecutionEventJson.Parse(bytes) is { } e && e.ExecutionId == ExecutionId)
            Post(new Input(InputKind.Event, EventArrival.Redis, new EventMessage(e, bytes)));
    }

    private async Task RunAsync()
    {
        var ct = stop.Token;
        try
        {
            // Listen first, then read where the log ends: whatever is published after the read is heard, whatever was
            // published before it is at or below the baseline, so subscribers that replay up to it miss nothing.
            await SubscribeRedisAsync(ct).ConfigureAwait(false);
            var tails = await hub.ReadTailsAsync([ExecutionId], ct).ConfigureAwait(false);
            Volatile.Write(ref last, tails.GetValueOrDefault(ExecutionId));
            ready.TrySetResult();

            while (!terminal && await inputs.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                while (!terminal && inputs.Reader.TryRead(out var input))
                    await HandleAsync(input, ct).ConfigureAwait(false);
                if (!terminal && Interlocked.Exchange(ref missed, 0) == 1)
                    await CatchUpAsync(ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopped: no subscribers left, or the replica is stopping.
        }
        catch (Exception ex)
        {
            // Only the baseline read gets here (later reads are retried): subscribers end and may reconnect.
            hub.Logger.StreamFeedFailed(ExecutionId, DatabaseErrors.Describe(ex));
            ready.TrySetException(ex);
            hub.EndFeed(this, ex);
        }
        finally
        {
            ready.TrySetCanceled(CancellationToken.None);
            UnsubscribeRedis();
            stop.Dispose();
        }
    }

    private async Task HandleAsync(Input input, CancellationToken ct)
    {
        switch (input.Kind)
        {
            case InputKind.Event:
                Volatile.Write(ref lastActivity, Environment.TickCount64);
                var e = input.Message.Event;
                if (e.LastSeq <= last)
                {
                    hub.CountDuplicate();
                    return;
                }
                if (e.Seq > last + 1)
                {
                    // A gap: what Redis lost (or this loop dropped) is in PostgreSQL, and goes out first.
                    await CatchUpAsync(ct).ConfigureAwait(false);
                    if (terminal || e.LastSeq <= last)
                        return;
                    if (e.Seq > last + 1)
                    {
                        // The database is down, or the log really lacks them: never deliver past a gap; a later
                        // event or the hub's poll reads them once they are there.
                        hub.NoteMissing(ExecutionId, last + 1, e.Seq);
                        return;
                    }
                }
                Deliver(input.Message, input.Arrival);
                break;
            case InputKind.CatchUp:
                await CatchUpAsync(ct).ConfigureAwait(false);
                break;
            case InputKind.Resubscribe:
                await ResubscribeRedisAsync(ct).ConfigureAwait(false);
                break;
        }
    }

    private void Deliver(in EventMessage message, EventArrival arrival)
    {
        Volatile.Write(ref last, message.Event.LastSeq);
        hub.CountDelivered(arrival);
        List<EventSubscription>? slow = null;
        foreach (var subscriber in subscribers)
        {
            if (!subscriber.TryDeliver(message))
                (slow ??= []).Add(subscriber);
        }
        if (slow is not null)
        {
            foreach (var subscriber in slow)
                hub.DropSlow(subscriber);
        }
        if (message.Event.IsTerminal)
        {
            terminal = true;
            hub.EndFeed(this, null);
        }
    }

    /// <summary>Delivers every stored event after <see cref="Last"/>, page by page.</summary>
    private async Task CatchUpAsync(CancellationToken ct)
    {
        if (Environment.TickCount64 < retryReadsAt)
            return;
        try
        {
            while (!terminal)
            {
                var page = await hub.ReadAfterAsync(ExecutionId, last, ct).ConfigureAwait(false);
                foreach (var e in page)
                {
                    if (e.LastSeq <= last)
                        continue;
                    Deliver(new EventMessage(e, ExecutionEventJson.ToUtf8(e)), EventArrival.Database);
                    if (terminal)
                        return;
                }
                if (page.Count < hub.PageSize)
                    return;
            }
        }
        catch (Exception ex) when (!ct.IsCancellationRequested && DatabaseErrors.IsUnavailable(ex))
        {
            retryReadsAt = Environment.TickCount64 + ReadRetryMilliseconds;
            hub.NoteReadFailed(ExecutionId, ex);
        }
    }

    private async Task SubscribeRedisAsync(CancellationToken ct)
    {
        var connecting = hub.Redis.Connection;
        if (!connecting.IsCompleted)
        {
            // The replica's first connection attempt is still under way: do not hold the stream up for it.
            _ = connecting.ContinueWith(_ => RequestResubscribe(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            return;
        }
        if (connecting.Result is not { } m)
            return;
        if (multiplexer is null)
        {
            multiplexer = m;
            hub.CountRedisSubscription(+1);
        }
        subscribedWhileConnected = m.IsConnected;
        try
        {
            await m.GetSubscriber().SubscribeAsync(channel, onRedisMessage).WaitAsync(RedisTimeout, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
        {
            // The handler stays registered; Redis' return (Restored) subscribes it again, PostgreSQL covers meanwhile.
            subscribedWhileConnected = false;
        }
    }

    private async Task ResubscribeRedisAsync(CancellationToken ct)
    {
        if (multiplexer is not { } m)
        {
            await SubscribeRedisAsync(ct).ConfigureAwait(false);
            return;
        }
        // StackExchange.Redis 1.2.6 re-sends only subscriptions it had sent; one made while Redis was down stays
        // local until made again.
        if (subscribedWhileConnected || !m.IsConnected)
            return;
        try
        {
            await m.GetSubscriber().UnsubscribeAsync(channel, onRedisMessage).WaitAsync(RedisTimeout, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
        {
            // Subscribing again below is what matters.
        }
        await SubscribeRedisAsync(ct).ConfigureAwait(false);
    }

    private void UnsubscribeRedis()
    {
        if (multiplexer is not { } m)
            return;
        multiplexer = null;
        hub.CountRedisSubscription(-1);
        try
        {
            m.GetSubscriber().Unsubscribe(channel, onRedisMessage, CommandFlags.FireAndForget);
        }
        catch (Exception ex) when (ex is RedisException or ObjectDisposedException)
        {
            // The connection is gone, and the subscription with it.
        }
    }

    private enum InputKind : byte
    {
        Event,
        CatchUp,
        Resubscribe,
    }

    private readonly record struct Input(InputKind Kind, EventArrival Arrival, EventMessage Message);
}
