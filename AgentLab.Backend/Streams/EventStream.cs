using System.Net.WebSockets;
using AgentLab.Backend.Data;
using AgentLab.Backend.Events;

namespace AgentLab.Backend.Streams;

/// <summary>Why a stream ended; decides how the connection is closed.</summary>
internal enum StreamEnd
{
    /// <summary>The terminal event was sent.</summary>
    Terminal,

    /// <summary>The execution had finished and everything stored was sent (its log has no terminal event).</summary>
    Finished,

    /// <summary>The client fell <c>Streams:SendQueueCapacity</c> events behind.</summary>
    TooSlow,

    /// <summary>The replica is stopping.</summary>
    Stopping,

    /// <summary>The client sent a message over <c>Streams:MaxClientMessageBytes</c>.</summary>
    MessageTooBig,

    /// <summary>The client closed or went away.</summary>
    ClientGone,

    /// <summary>PostgreSQL could not be read.</summary>
    Unavailable,
}

/// <summary>Where a stream's events go: a WebSocket or an SSE response.</summary>
internal interface IEventSink
{
    ValueTask WriteAsync(EventMessage message, CancellationToken ct);

    /// <summary>Something that keeps an idle connection open through proxies (SSE only; WebSockets ping by themselves).</summary>
    ValueTask HeartbeatAsync(CancellationToken ct);
}

/// <summary>
/// The subscriber protocol for one connection (ARCHITECTURE.md, "Events"): subscribe to the execution's feed first,
/// replay the stored log after <c>last_event_id</c> from PostgreSQL page by page, then send the live events, dropping
/// what was already sent by seq. Ends after the terminal event. Anything that stops it early (slow client, shutdown,
/// the client) first stops new sends (<see cref="Wake"/>), then, <c>Streams:CloseTimeoutMilliseconds</c> later, gives
/// up a send the client is not reading (<see cref="Aborted"/>), so no stuck client holds memory or shutdown.
/// </summary>
internal sealed class EventStream : IDisposable
{
    private readonly ExecutionEventHub hub;
    private readonly StreamOptions options;
    private readonly Guid executionId;
    private readonly bool finished;
    private readonly CancellationTokenSource wake = new();
    private readonly CancellationTokenSource abort = new();
    private readonly CancellationTokenRegistration onStopping;
    private readonly CancellationTokenRegistration onAborted;
    private int wokenBy = -1;

    /// <param name="finished">The execution had already finished: replay, then end, without a feed.</param>
    public EventStream(ExecutionEventHub hub, StreamOptions options, Guid executionId, long afterSeq, bool finished,
        CancellationToken stopping, CancellationToken requestAborted)
    {
        this.hub = hub;
        this.options = options;
        this.executionId = executionId;
        this.finished = finished;
        Last = afterSeq;
        onStopping = stopping.Register(static s => ((EventStream)s!).Wake(StreamEnd.Stopping), this);
        onAborted = requestAborted.Register(static s =>
        {
            var stream = (EventStream)s!;
            stream.Wake(StreamEnd.ClientGone);
            stream.abort.Cancel();
        }, this);
    }

    /// <summary>The last seq sent to the client: the <c>last_event_id</c> to resume from.</summary>
    public long Last { get; private set; }

    /// <summary>A send outlived the close timeout and was given up: drop the connection, a close cannot be sent.</summary>
    public bool Aborted => abort.IsCancellationRequested;

    /// <summary>Stops sending: the stream ends with <paramref name="reason"/> (the first one given wins).</summary>
    public void Wake(StreamEnd reason)
    {
        if (Interlocked.CompareExchange(ref wokenBy, (int)reason, -1) != -1)
            return;
        try
        {
            wake.Cancel();
            abort.CancelAfter(options.CloseTimeout);
        }
        catch (ObjectDisposedException)
        {
            // The stream already finished.
        }
    }

    private StreamEnd WokenBy => Volatile.Read(ref wokenBy) is var r and >= 0 ? (StreamEnd)r : StreamEnd.ClientGone;

    /// <summary>Runs the stream until it ends; <paramref name="heartbeat"/> is the idle interval for <see cref="IEventSink.HeartbeatAsync"/>.</summary>
    public async Task<StreamEnd> RunAsync(IEventSink sink, TimeSpan? heartbeat)
    {
        EventSubscription? subscription = null;
        try
        {
            if (!finished)
            {
                subscription = hub.Subscribe(executionId, options.SendQueueCapacity, () => Wake(StreamEnd.TooSlow));
                await subscription.Ready.WaitAsync(wake.Token).ConfigureAwait(false);
            }
            while (true)
            {
                if (await ReplayAsync(sink).ConfigureAwait(false) is { } ended)
                    return ended;
                if (subscription is null)
                    return StreamEnd.Finished;
                // Live events that did not fit while replaying were dropped from the queue: replay them too.
                if (subscription.TryGoLive())
                    return await LiveAsync(subscription, sink, heartbeat).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (wake.IsCancellationRequested || abort.IsCancellationRequested)
        {
            return WokenBy;
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or ObjectDisposedException)
        {
            return StreamEnd.ClientGone;
        }
        catch (Exception ex) when (DatabaseErrors.IsUnavailable(ex) || ex is OperationCanceledException)
        {
            // The database is down (or the feed stopped under us): the client resumes from Last when it reconnects.
            UnavailableReason = DatabaseErrors.Describe(ex);
            return StreamEnd.Unavailable;
        }
        finally
        {
            subscription?.Dispose();
        }
    }

    /// <summary>Why the stream ended <see cref="StreamEnd.Unavailable"/>, for the log.</summary>
    public string UnavailableReason { get; private set; } = "";

    /// <summary>Sends every stored event after <see cref="Last"/>; non-null when the stream ended meanwhile.</summary>
    private async Task<StreamEnd?> ReplayAsync(IEventSink sink)
    {
        while (true)
        {
            var page = await hub.ReadAfterAsync(executionId, Last, abort.Token).ConfigureAwait(false);
            foreach (var e in page)
            {
                if (e.LastSeq <= Last)
                    continue;
                if (wake.IsCancellationRequested)
                    return WokenBy;
                await sink.WriteAsync(new EventMessage(e, ExecutionEventJson.ToUtf8(e)), abort.Token).ConfigureAwait(false);
                Last = e.LastSeq;
                if (e.IsTerminal)
                    return StreamEnd.Terminal;
            }
            if (page.Count < options.ReplayPageSize)
                return null;
        }
    }

    private async Task<StreamEnd> LiveAsync(EventSubscription subscription, IEventSink sink, TimeSpan? heartbeat)
    {
        var reader = subscription.Reader;
        Task<bool>? waiting = null;
        Task? beat = null;
        while (true)
        {
            while (reader.TryRead(out var message))
            {
                if (wake.IsCancellationRequested)
                    return WokenBy;
                var e = message.Event;
                if (e.LastSeq <= Last)
                    continue;
                if (e.Seq > Last + 1)
                {
                    // The feed delivers without gaps once ready; if one shows anyway, the stored log fills it.
                    if (await ReplayAsync(sink).ConfigureAwait(false) is { } ended)
                        return ended;
                    if (e.LastSeq <= Last)
                        continue;
                }
                await sink.WriteAsync(message, abort.Token).ConfigureAwait(false);
                Last = e.LastSeq;
                if (e.IsTerminal)
                    return StreamEnd.Terminal;
            }
            if (wake.IsCancellationRequested)
                return WokenBy;

            waiting ??= reader.WaitToReadAsync(wake.Token).AsTask();
            if (heartbeat is { } interval && !waiting.IsCompleted)
            {
                // One timer per connection at a time, not one per wait: a busy stream waits thousands of times.
                beat ??= Task.Delay(interval, wake.Token);
                if (await Task.WhenAny(waiting, beat).ConfigureAwait(false) == beat)
                {
                    beat = null;
                    if (wake.IsCancellationRequested)
                        return WokenBy;
                    await sink.HeartbeatAsync(abort.Token).ConfigureAwait(false);
                    continue;
                }
            }
            var more = await waiting.ConfigureAwait(false);
            waiting = null;
            if (!more)
            {
                // Completed without a terminal event for us: dropped as too slow, or the feed ended; the stored log
                // may still hold the end.
                if (subscription.Overflowed)
                    return StreamEnd.TooSlow;
                return await ReplayAsync(sink).ConfigureAwait(false) ?? StreamEnd.Unavailable;
            }
        }
    }

    public void Dispose()
    {
        onStopping.Dispose();
        onAborted.Dispose();
        wake.Dispose();
        abort.Dispose();
    }
}
