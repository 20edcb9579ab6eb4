using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Threading.Channels;
using AgentLab.Backend.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace AgentLab.Backend.Events;

/// <summary>
/// Creates the <see cref="EventJournal"/> of a run. Singleton; each journal gets its own database scope, because it
/// writes in the background while the run uses its own DbContext.
/// </summary>
public sealed class EventJournals(
    IServiceScopeFactory scopes, ExecutionEventPublisher publisher, IOptions<EventOptions> options, TimeProvider time,
    ILogger<EventJournal> logger)
{
    /// <summary>
    /// A journal for the run of <paramref name="executionId"/> held by <paramref name="owner"/>, whose stored log ends
    /// at <paramref name="lastSeq"/> (its <c>execution_started</c>).
    /// </summary>
    public EventJournal Start(Guid executionId, string owner, long lastSeq) =>
        new(executionId, owner, lastSeq, scopes.CreateAsyncScope(), publisher, options.Value, time, logger);
}

/// <summary>
/// The run's own events (<c>node_started</c>, <c>token</c>, <c>node_completed</c>, <c>node_failed</c>, <c>log</c>),
/// stored in <c>execution_events</c> with the next gap-free seqs and then published, in order. One per run, written
/// by the lease holder only.
/// </summary>
/// <remarks>
/// <para>The run's stream reader never waits for the database: it hands events to a bounded queue and goes on; one
/// background loop takes everything queued and writes it with one INSERT, so a slow database means bigger batches,
/// not a slower stream. Only a full queue (<see cref="EventOptions.JournalCapacity"/>) makes the reader wait.</para>
/// <para>Tokens are coalesced per node into one chunk event, <c>{"text": ..., "tokens": n}</c>, stored after
/// <see cref="EventOptions.TokenChunkMilliseconds"/> or <see cref="EventOptions.TokenChunkMaxTokens"/> tokens, and at
/// once before any other event (order is kept) or when the run ends. A node's first token (after each
/// <c>node_started</c>) is stored alone at once, so the time to first token survives the coalescing.</para>
/// <para>Two writers share an execution's seqs: this journal and <see cref="ExecutionStore.CancelAsync"/> (any
/// replica). Each INSERT carries explicit seqs and holds only while the row is <c>running</c>, held by this owner
/// (locked <c>FOR SHARE</c> for the statement, so a cancel waits for it or it sees the cancel) and the stored log still
/// ends where the journal thinks it does. So seqs never collide or skip, and a retry after a commit whose outcome was
/// unknown finds its rows instead of storing them twice. When the row is no longer this owner's, the journal stops
/// (<see cref="Stopped"/> fires: the run aborts its LabService call) and drops what is left.</para>
/// </remarks>
public sealed class EventJournal : IAsyncDisposable
{
    // One statement: the guard, the gap check and the insert. FOR SHARE conflicts with the UPDATE of a cancel or a
    // takeover: if one committed first, the re-checked row no longer matches and nothing is written.
    private const string InsertSql = """
        INSERT INTO execution_events (execution_id, seq, type, node, data, ts)
        SELECT @id, @expected + b.ord, b.type, b.node, b.data, b.ts
        FROM unnest(@types, @nodes, @datas, @tss) WITH ORDINALITY AS b(type, node, data, ts, ord)
        WHERE EXISTS (SELECT 1 FROM executions x WHERE x.id = @id AND x.status = 'running' AND x.lease_owner = @owner FOR SHARE)
          AND (SELECT COALESCE(MAX(e.seq), 0) FROM execution_events e WHERE e.execution_id = @id) = @expected
        """;

    // Asked only when the insert wrote nothing: did an earlier try of this very batch commit?
    private const string LandedSql = """
        SELECT COALESCE(array_agg(type ORDER BY seq) = @types, false) AS "Value"
        FROM execution_events WHERE execution_id = @id AND seq > @expected AND seq <= @expected + @count
        """;

    private static readonly JavaScriptEncoder Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping;

    private readonly Guid executionId;
    private readonly string owner;
    private readonly AsyncServiceScope scope;
    private readonly AgentLabDb db;
    private readonly ExecutionEventPublisher publisher;
    private readonly EventOptions options;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private readonly Channel<Item> queue;
    private readonly CancellationTokenSource stopped = new();
    private readonly Task loop;
    private long lastSeq;
    private volatile int state;   // State
    private Exception? failure;

    internal EventJournal(Guid executionId, string owner, long lastSeq, AsyncServiceScope scope, ExecutionEventPublisher publisher,
        EventOptions options, TimeProvider time, ILogger logger)
    {
        this.executionId = executionId;
        this.owner = owner;
        this.lastSeq = lastSeq;
        this.scope = scope;
        db = scope.ServiceProvider.GetRequiredService<AgentLabDb>();
        this.publisher = publisher;
        this.options = options;
        this.time = time;
        this.logger = logger;
        queue = Channel.CreateBounded<Item>(new BoundedChannelOptions(options.JournalCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
        });
        loop = Task.Run(WriteLoopAsync);
    }

    private enum State { Writing, LeaseLost, Failed }

    public Guid ExecutionId => executionId;

    /// <summary>The last seq stored (and published) by this journal or before it.</summary>
    public long LastSeq => Interlocked.Read(ref lastSeq);

    /// <summary>Fires when the journal cannot write any more (the lease is gone, or the database failed): stop the run.</summary>
    public CancellationToken Stopped => stopped.Token;

    /// <summary>True once a write found the row no longer running under this owner (cancelled, finished, taken over).</summary>
    public bool IsLeaseLost => state == (int)State.LeaseLost;

    /// <summary>Queues a non-token event; <paramref name="data"/> is a JSON object. Waits only while the queue is full.</summary>
    public ValueTask AppendAsync(string type, string? node, string data, CancellationToken ct = default) =>
        WriteAsync(new Item(type, node, data, Now()), ct);

    /// <summary>Queues one token of <paramref name="node"/>; coalesced with its neighbours before it is stored.</summary>
    public ValueTask TokenAsync(string node, string text, CancellationToken ct = default) =>
        text.Length == 0 ? ValueTask.CompletedTask : WriteAsync(new Item(EventTypes.Token, node, text, Now()), ct);

    /// <summary>
    /// Stores everything queued and stops. Await it before the run's terminal event is written, which must come last.
    /// Throws the database failure that stopped the journal, if one did (the run then ends as a database outage does).
    /// </summary>
    public async Task CompleteAsync()
    {
        queue.Writer.TryComplete();
        await loop.ConfigureAwait(false);
        if (failure is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
    }

    public async ValueTask DisposeAsync()
    {
        queue.Writer.TryComplete();
        try
        {
            await loop.ConfigureAwait(false);
        }
        finally
        {
            stopped.Dispose();
            await scope.DisposeAsync().ConfigureAwait(false);
        }
    }

    private ValueTask WriteAsync(Item item, CancellationToken ct)
    {
        if (state != (int)State.Writing)
            return ValueTask.CompletedTask;   // nothing more is stored: the run is being stopped
        if (queue.Writer.TryWrite(item))
            return ValueTask.CompletedTask;
        return WriteSlowAsync(item, ct);
    }

    private async ValueTask WriteSlowAsync(Item item, CancellationToken ct)
    {
        try
        {
            await queue.Writer.WriteAsync(item, ct).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            // Completed meanwhile (the run is ending): a late event has nowhere to go.
        }
    }

    // Postgres keeps microseconds: the published ts must equal the one a replay reads back.
    private DateTimeOffset Now()
    {
        var now = time.GetUtcNow();
        return now.AddTicks(-(now.Ticks % 10));
    }

    private async Task WriteLoopAsync()
    {
        var reader = queue.Reader;
        var ready = new List<Item>();
        var coalescer = new Coalescer(options.TokenChunkMaxTokens, time);
        Task? chunkDue = null;
        var chunkDueFor = 0L;
        try
        {
            while (true)
            {
                while (ready.Count < options.MaxBatchEvents && reader.TryRead(out var item))
                    coalescer.Add(item, ready);
                if (coalescer.HasPending && (time.GetElapsedTime(coalescer.PendingSince) >= ChunkInterval
                    || (chunkDue is { IsCompleted: true } && chunkDueFor == coalescer.PendingSince)))
                    coalescer.Flush(ready);

                if (ready.Count > 0)
                {
                    await StoreAsync(ready).ConfigureAwait(false);
                    ready.Clear();
                    if (state != (int)State.Writing)
                        break;
                    continue;   // what queued up meanwhile goes into the next INSERT
                }

                if (!coalescer.HasPending)
                {
                    if (!await reader.WaitToReadAsync().ConfigureAwait(false))
                        break;
                    continue;
                }

                // A chunk is pending: wait for more events, or until it comes due (one timer per chunk).
                var more = reader.WaitToReadAsync().AsTask();
                if (!more.IsCompleted)
                {
                    if (chunkDue is null || chunkDueFor != coalescer.PendingSince)
                    {
                        var left = ChunkInterval - time.GetElapsedTime(coalescer.PendingSince);
                        chunkDue = Task.Delay(left > TimeSpan.Zero ? left : TimeSpan.Zero, time);
                        chunkDueFor = coalescer.PendingSince;
                    }
                    await Task.WhenAny(more, chunkDue).ConfigureAwait(false);
                }
                if (more.IsCompleted && !more.Result)
                {
                    // The run ended: its last chunk goes now.
                    coalescer.Flush(ready);
                    await StoreAsync(ready).ConfigureAwait(false);
                    ready.Clear();
                    break;
                }
            }
        }
        catch (Exception ex)
        {
            failure = ex;
            Stop(State.Failed);
            logger.EventJournalFailed(executionId, DatabaseErrors.Describe(ex));
        }

        // Whatever is still queued is dropped; draining it releases a reader waiting on a full queue.
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out _))
            {
            }
        }
    }

    private TimeSpan ChunkInterval => TimeSpan.FromMilliseconds(options.TokenChunkMilliseconds);

    private void Stop(State why)
    {
        state = (int)why;
        try
        {
            stopped.Cancel();
        }
        catch (AggregateException ex)
        {
            // A callback of the run failed; the run learns of the stop anyway through IsLeaseLost / the failure.
            logger.EventJournalFailed(executionId, ex.Message);
        }
    }

    private async Task StoreAsync(List<Item> events)
    {
        for (var offset = 0; offset < events.Count && state == (int)State.Writing; offset += options.MaxBatchEvents)
        {
            var slice = events.GetRange(offset, Math.Min(options.MaxBatchEvents, events.Count - offset));
            var expected = LastSeq;
            if (!await InsertAsync(slice, expected).ConfigureAwait(false))
            {
                Stop(State.LeaseLost);
                logger.EventJournalLeaseLost(executionId, slice.Count);
                return;
            }
            Interlocked.Exchange(ref lastSeq, expected + slice.Count);
            for (var i = 0; i < slice.Count; i++)
            {
                var e = slice[i];
                using var data = JsonDocument.Parse(e.Data);
                publisher.Publish(new ExecutionEvent(executionId, expected + i + 1, e.Type, e.Node, data.RootElement.Clone(), e.Ts));
            }
        }
    }

    /// <summary>True when the batch is stored (now, or by an earlier try whose commit was reported as failed).</summary>
    private async Task<bool> InsertAsync(List<Item> batch, long expected)
    {
        var types = new string[batch.Count];
        var nodes = new string?[batch.Count];
        var datas = new string[batch.Count];
        var tss = new DateTimeOffset[batch.Count];
        for (var i = 0; i < batch.Count; i++)
            (types[i], nodes[i], datas[i], tss[i]) = (batch[i].Type, batch[i].Node, batch[i].Data, batch[i].Ts);

        var strategy = db.Database.CreateExecutionStrategy();
        return await strategy.ExecuteAsync(async ct =>
        {
            var inserted = await db.Database.ExecuteSqlRawAsync(InsertSql,
            [
                Param("id", NpgsqlDbType.Uuid, executionId),
                Param("owner", NpgsqlDbType.Text, owner),
                Param("expected", NpgsqlDbType.Bigint, expected),
                Param("types", NpgsqlDbType.Array | NpgsqlDbType.Text, types),
                Param("nodes", NpgsqlDbType.Array | NpgsqlDbType.Text, nodes),
                Param("datas", NpgsqlDbType.Array | NpgsqlDbType.Jsonb, datas),
                Param("tss", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz, tss),
            ], ct).ConfigureAwait(false);
            if (inserted == batch.Count)
                return true;
            return await db.Database.SqlQueryRaw<bool>(LandedSql,
            [
                Param("id", NpgsqlDbType.Uuid, executionId),
                Param("expected", NpgsqlDbType.Bigint, expected),
                Param("count", NpgsqlDbType.Bigint, (long)batch.Count),
                Param("types", NpgsqlDbType.Array | NpgsqlDbType.Text, types),
            ]).SingleAsync(ct).ConfigureAwait(false);
        }, CancellationToken.None).ConfigureAwait(false);
    }

    private static NpgsqlParameter Param(string name, NpgsqlDbType type, object value) => new(name, type) { Value = value };

    /// <summary>An event as queued: for a token, <see cref="Data"/> is its text.</summary>
    private readonly record struct Item(string Type, string? Node, string Data, DateTimeOffset Ts);

    /// <summary>Turns queued items into events to store: tokens joined into one chunk per node.</summary>
    private sealed class Coalescer(int maxTokens, TimeProvider time)
    {
        private readonly List<Chunk> chunks = [];
        private readonly HashSet<string> nodesWithTokens = new(StringComparer.Ordinal);

        public bool HasPending => chunks.Count > 0;

        /// <summary>When the oldest pending chunk got its first token (a <see cref="TimeProvider"/> timestamp).</summary>
        public long PendingSince { get; private set; }

        public void Add(Item item, List<Item> ready)
        {
            if (item.Type != EventTypes.Token)
            {
                // A new attempt of a node streams again: its first token is stored alone again.
                if (item.Type == EventTypes.NodeStarted && item.Node is not null)
                    nodesWithTokens.Remove(item.Node);
                Flush(ready);
                ready.Add(item);
                return;
            }

            var node = item.Node ?? "";
            if (nodesWithTokens.Add(node))
            {
                Flush(ready);
                ready.Add(item with { Data = ChunkJson(item.Data, 1) });
                return;
            }
            var chunk = chunks.Find(c => c.Key == node);
            if (chunk is null)
            {
                if (chunks.Count == 0)
                    PendingSince = time.GetTimestamp();
                chunk = new Chunk(node, item.Node, item.Ts);
                chunks.Add(chunk);
            }
            chunk.Text.Append(item.Data);
            chunk.Tokens++;
            if (chunk.Tokens >= maxTokens)
                Flush(ready);
        }

        /// <summary>Moves every pending chunk, oldest first, to <paramref name="ready"/>.</summary>
        public void Flush(List<Item> ready)
        {
            foreach (var chunk in chunks)
                ready.Add(new Item(EventTypes.Token, chunk.Node, ChunkJson(chunk.Text.ToString(), chunk.Tokens), chunk.Ts));
            chunks.Clear();
        }

        private static string ChunkJson(string text, int tokens)
        {
            var buffer = new ArrayBufferWriter<byte>(text.Length + 32);
            using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = Encoder }))
            {
                json.WriteStartObject();
                json.WriteString("text", text);
                json.WriteNumber("tokens", tokens);
                json.WriteEndObject();
            }
            return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
        }

        private sealed class Chunk(string key, string? node, DateTimeOffset ts)
        {
            public string Key { get; } = key;
            public string? Node { get; } = node;
            public DateTimeOffset Ts { get; } = ts;
            public System.Text.StringBuilder Text { get; } = new();
            public int Tokens { get; set; }
        }
    }
}

/// <summary>Builds an event's <c>data</c> object (JSON text) without an intermediate object model.</summary>
public static class EventData
{
    private static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string Of(Action<Utf8JsonWriter> members)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var json = new Utf8JsonWriter(buffer, Options))
        {
            json.WriteStartObject();
            members(json);
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
