using System.Threading.Channels;

namespace AgentLab.Backend.Events;

/// <summary>
/// One subscriber of an execution's feed (<see cref="ExecutionEventHub.Subscribe"/>): a bounded queue of live events
/// in seq order, without gaps from the feed's first event on. The subscriber replays what came before from PostgreSQL
/// and drops duplicates by seq (ARCHITECTURE.md, "Events"). Dispose it to leave the feed.
/// </summary>
public sealed class EventSubscription : IDisposable
{
    private readonly ExecutionEventHub hub;
    private readonly Channel<EventMessage> queue;
    private readonly Action? onOverflow;
    private readonly long lagLimitMs;
    private int state = Replaying;
    private long laggingSince;
    private int overflowed;
    private int maxQueued;

    // While the subscriber replays from PostgreSQL it does not read its queue: a full queue then only means it must
    // replay further (everything is stored), not that the client is slow. Only a live subscriber is dropped at once.
    private const int Replaying = 0, Lagging = 1, Live = 2;

    internal EventSubscription(ExecutionEventHub hub, Guid executionId, int capacity, TimeSpan lagLimit, Action? onOverflow)
    {
        this.hub = hub;
        this.onOverflow = onOverflow;
        lagLimitMs = (long)lagLimit.TotalMilliseconds;
        ExecutionId = executionId;
        Capacity = capacity;
        // Full means the client is not keeping up: the feed never waits for one subscriber, it drops it.
        queue = Channel.CreateBounded<EventMessage>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
        });
    }

    public Guid ExecutionId { get; }

    /// <summary>How many events may wait for this subscriber before it is dropped as too slow.</summary>
    public int Capacity { get; }

    /// <summary>Live events, in seq order. Completed after the terminal event, on overflow, or when the feed failed.</summary>
    public ChannelReader<EventMessage> Reader => queue.Reader;

    /// <summary>
    /// Completes once the feed knows where the stored log ends (and is listening): replaying from PostgreSQL after
    /// this cannot leave a gap before the first live event. Faults when the database cannot be read.
    /// </summary>
    public Task Ready => Feed!.Ready;

    /// <summary>True once the queue overflowed: the subscriber was removed from its feed and must close with a resume hint.</summary>
    public bool Overflowed => Volatile.Read(ref overflowed) == 1;

    /// <summary>The most events that ever waited in this queue (never more than <see cref="Capacity"/>).</summary>
    public int MaxQueued => Volatile.Read(ref maxQueued);

    internal ExecutionEventFeed? Feed { get; set; }

    /// <summary>Set while the subscriber counts as attached (hub lock).</summary>
    internal bool Attached { get; set; }

    /// <summary>
    /// Called by the feed's loop only. False when the subscriber must be dropped as too slow: its queue is full while
    /// it is live, or it has been replaying with a full queue for longer than <c>Streams:ReplayLagSeconds</c>.
    /// </summary>
    internal bool TryDeliver(in EventMessage message)
    {
        var current = Volatile.Read(ref state);
        if (current == Lagging)
            return !LaggedTooLong();
        if (queue.Writer.TryWrite(message))
        {
            var depth = queue.Reader.Count;
            if (depth > maxQueued)
            {
                Volatile.Write(ref maxQueued, depth);
                hub.NoteQueueDepth(depth);
            }
            return true;
        }
        if (current == Replaying && Interlocked.CompareExchange(ref state, Lagging, Replaying) == Replaying)
        {
            Volatile.Write(ref laggingSince, Environment.TickCount64);
            return true;
        }
        return Volatile.Read(ref state) == Lagging && !LaggedTooLong();
    }

    private bool LaggedTooLong() => Environment.TickCount64 - Volatile.Read(ref laggingSince) > lagLimitMs;

    /// <summary>
    /// After a replay: switches to live delivery, or returns false when the queue overflowed meanwhile; then the queue
    /// has been emptied and the subscriber must replay again (what it dropped is in PostgreSQL) before trying again.
    /// </summary>
    public bool TryGoLive()
    {
        if (Interlocked.CompareExchange(ref state, Live, Replaying) == Replaying)
            return true;
        // Replaying again before draining: whatever the drain takes was committed before the next replay reads.
        Volatile.Write(ref state, Replaying);
        while (queue.Reader.TryRead(out _))
        {
        }
        return false;
    }

    internal void MarkOverflowed()
    {
        if (Interlocked.Exchange(ref overflowed, 1) != 0)
            return;
        queue.Writer.TryComplete();
        onOverflow?.Invoke();
    }

    /// <summary>No more live events: the terminal one was queued, or the feed failed (<paramref name="error"/>).</summary>
    internal void Complete(Exception? error = null) => queue.Writer.TryComplete(error);

    public void Dispose() => hub.Unsubscribe(this);
}
