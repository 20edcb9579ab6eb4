using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using AgentLab.Backend.Data;
using AgentLab.Backend.Events;
using AgentLab.Tests.Backend.History;
using AgentLab.Tests.Support;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using NpgsqlTypes;

namespace AgentLab.Tests.Backend.Streams;

/// <summary>
/// Writes an execution's events as the write side does (stored in <c>execution_events</c>, committed, then published
/// in seq order), without depending on it: the streams are tested against the contract alone.
/// </summary>
public sealed class StreamProducer : IAsyncDisposable
{
    private readonly NpgsqlDataSource source;
    private readonly ExecutionEventPublisher publisher;
    private long seq;

    private StreamProducer(NpgsqlDataSource source, ExecutionEventPublisher publisher, Guid executionId)
    {
        this.source = source;
        this.publisher = publisher;
        ExecutionId = executionId;
    }

    public Guid ExecutionId { get; }

    /// <summary>The last seq written.</summary>
    public long Seq => Interlocked.Read(ref seq);

    /// <summary>
    /// A running execution (held by another replica's live lease, so no Backend under test takes it over), owned by
    /// <paramref name="owner"/> (by default the subject of the default test client, which then may stream it).
    /// </summary>
    public static async Task<StreamProducer> StartAsync(TestDatabase database, ExecutionEventPublisher publisher, CancellationToken ct,
        string status = ExecutionStatus.Running, string owner = TestTokens.DefaultSubject)
    {
        var row = ExecutionRows.Row(status, DateTimeOffset.UtcNow, owner: owner);
        await ExecutionRows.InsertAsync(database, [row], ct);
        return new StreamProducer(NpgsqlDataSource.Create(database.ConnectionString), publisher, row.Id);
    }

    /// <summary>Stores <paramref name="count"/> token events (each with <paramref name="padBytes"/> of padding) in one transaction, then publishes them.</summary>
    public Task<IReadOnlyList<ExecutionEvent>> WriteAsync(int count, CancellationToken ct, int padBytes = 0) =>
        StoreAndPublishAsync(count, EventTypes.Token, padBytes, publish: true, ct);

    /// <summary>Stores them without publishing (as if Redis lost them, or the writer crashed between the two).</summary>
    public Task<IReadOnlyList<ExecutionEvent>> StoreOnlyAsync(int count, CancellationToken ct) =>
        StoreAndPublishAsync(count, EventTypes.Token, 0, publish: false, ct);

    /// <summary>The terminal event, stored together with the finished status, then published.</summary>
    public async Task<ExecutionEvent> FinishAsync(CancellationToken ct, bool publish = true) =>
        (await StoreAndPublishAsync(1, EventTypes.ExecutionCompleted, 0, publish, ct))[0];

    private async Task<IReadOnlyList<ExecutionEvent>> StoreAndPublishAsync(int count, string type, int padBytes, bool publish, CancellationToken ct)
    {
        var pad = new string('x', padBytes);
        var events = new List<ExecutionEvent>(count);
        var ts = DateTimeOffset.UtcNow;
        for (var i = 0; i < count; i++)
        {
            var next = Interlocked.Increment(ref seq);
            var data = JsonSerializer.SerializeToElement(new Dictionary<string, object> { ["text"] = $"t{next}", ["tokens"] = 1, ["pad"] = pad });
            events.Add(new ExecutionEvent(ExecutionId, next, type, type == EventTypes.Token ? "executor" : null, data, ts));
        }

        await using (var connection = await source.OpenConnectionAsync(ct))
        await using (var transaction = await connection.BeginTransactionAsync(ct))
        {
            await using (var insert = new NpgsqlCommand("""
                INSERT INTO execution_events (execution_id, seq, type, node, data, ts)
                SELECT @id, u.s, @type, @node, u.d::jsonb, @ts FROM unnest(@seqs, @datas) AS u(s, d)
                """, connection, transaction))
            {
                insert.Parameters.AddWithValue("id", ExecutionId);
                insert.Parameters.AddWithValue("type", type);
                insert.Parameters.Add(new NpgsqlParameter("node", NpgsqlDbType.Text) { Value = (object?)events[0].Node ?? DBNull.Value });
                insert.Parameters.AddWithValue("ts", ts);
                insert.Parameters.AddWithValue("seqs", events.Select(e => e.Seq).ToArray());
                insert.Parameters.AddWithValue("datas", events.Select(e => e.Data.GetRawText()).ToArray());
                await insert.ExecuteNonQueryAsync(ct);
            }
            if (EventTypes.IsTerminal(type))
            {
                await using var finish = new NpgsqlCommand(
                    "UPDATE executions SET status = 'completed', completed_at = now(), lease_owner = NULL, lease_expires_at = NULL WHERE id = @id",
                    connection, transaction);
                finish.Parameters.AddWithValue("id", ExecutionId);
                await finish.ExecuteNonQueryAsync(ct);
            }
            await transaction.CommitAsync(ct);
        }

        // The writer's contract: publish only what is committed, in seq order.
        if (publish)
            publisher.Publish(events);
        return events;
    }

    public ValueTask DisposeAsync() => source.DisposeAsync();
}

/// <summary>Client helpers for the two stream endpoints.</summary>
internal static class StreamClient
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    public static string WebSocketPath(Guid id, long? after = null) =>
        $"/api/v1/ws/executions/{id}" + (after is { } a ? $"?last_event_id={a}" : "");

    public static string SsePath(Guid id) => $"/api/v1/executions/{id}/events";

    /// <summary>The next event, or null when the server closed (its close status is then on the socket).</summary>
    public static async Task<ExecutionEvent?> ReceiveAsync(WebSocket socket, CancellationToken ct)
    {
        var buffer = new byte[16 * 1024];
        using var message = new MemoryStream();
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, ct).WaitAsync(Bound, ct);
            if (result.MessageType == WebSocketMessageType.Close)
                return null;
            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage)
            {
                Assert.Equal(WebSocketMessageType.Text, result.MessageType);
                return ExecutionEventJson.Parse(message.ToArray()) ?? throw new InvalidOperationException("Not an event: " + Encoding.UTF8.GetString(message.ToArray()));
            }
        }
    }

    /// <summary>Every event until the server closes; answers the close.</summary>
    public static async Task<List<ExecutionEvent>> ReadToCloseAsync(WebSocket socket, CancellationToken ct)
    {
        var events = new List<ExecutionEvent>();
        while (await ReceiveAsync(socket, ct) is { } e)
            events.Add(e);
        try
        {
            if (socket.State == WebSocketState.CloseReceived)
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", ct).WaitAsync(Bound, ct);
        }
        catch (Exception ex) when (ex is IOException or WebSocketException or ObjectDisposedException)
        {
            // The server stopped waiting for the answer (Streams:CloseTimeoutMilliseconds); its close was received.
        }
        return events;
    }

    /// <summary>One SSE frame: its fields, or a comment.</summary>
    public sealed record SseFrame(string? Id, string? Event, string? Data, string? Comment);

    /// <summary>Reads SSE frames by hand (the framework's parser hides comments, and the heartbeat is one).</summary>
    public static async IAsyncEnumerable<SseFrame> ReadFramesAsync(Stream body, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        using var reader = new StreamReader(body, Encoding.UTF8);
        string? id = null, type = null, data = null;
        while (await reader.ReadLineAsync(ct).AsTask().WaitAsync(Bound, ct) is { } line)
        {
            if (line.Length == 0)
            {
                if (id is not null || type is not null || data is not null)
                    yield return new SseFrame(id, type, data, null);
                id = type = data = null;
            }
            else if (line.StartsWith(':'))
            {
                yield return new SseFrame(null, null, null, line[1..].Trim());
            }
            else
            {
                var colon = line.IndexOf(':');
                var field = colon < 0 ? line : line[..colon];
                var value = colon < 0 ? "" : line[(colon + 1)..].TrimStart(' ');
                switch (field)
                {
                    case "id": id = value; break;
                    case "event": type = value; break;
                    case "data": data = data is null ? value : data + "\n" + value; break;
                }
            }
        }
    }

    /// <summary>Seq by seq, 1..n, for comparing with what a client saw.</summary>
    public static long[] Seqs(long from, long to) => [.. Enumerable.Range((int)from, (int)(to - from + 1)).Select(i => (long)i)];
}

/// <summary>A Backend on a real Kestrel socket (slow consumers, Origin, message size need a real connection).</summary>
internal static class KestrelBackend
{
    public static Uri Start(BackendFactory factory)
    {
        factory.UseKestrel();
        factory.StartServer();
        var address = factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new Uri(address);
    }

    public static Uri WebSocketUri(Uri http, string pathAndQuery) =>
        new(new UriBuilder(http) { Scheme = http.Scheme == "https" ? "wss" : "ws" }.Uri, pathAndQuery);
}
