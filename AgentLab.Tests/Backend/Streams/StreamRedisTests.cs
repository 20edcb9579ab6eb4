using System.Net.WebSockets;
using AgentLab.Backend.Events;
using AgentLab.Tests.Support;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace AgentLab.Tests.Backend.Streams;

/// <summary>Streams across replicas through real Redis servers (Garnet and redis-server), and through Redis outages.</summary>
public sealed class StreamRedisTests : StreamsTestBase
{
    [Theory]
    [InlineData(RedisKind.Garnet)]
    [InlineData(RedisKind.RedisServer)]
    public async Task TwoReplicas_1000SubscribersOnOne_OneRedisSubscriptionEach_EveryEventReachesEverySubscriber(RedisKind kind)
    {
        RedisServer.SkipUnlessAvailable(kind);
        await using var redis = await RedisServer.StartAsync(kind, Ct);
        var settings = new Dictionary<string, string?>
        {
            ["ConnectionStrings:redis"] = redis.ConnectionString,
            // Connecting 1,000 clients can take longer than an idle check; one landing mid-burst would read from PostgreSQL.
            ["Streams:IdleCheckSeconds"] = "600",
        };
        var a = Replica(settings);
        var b = Replica(settings);
        await EventuallyAsync(() => Connected(a) && Connected(b), "both replicas reached Redis");
        await using var producer = await ProducerAsync(Publisher(a));
        await producer.WriteAsync(1, Ct);
        using var onA = await ConnectAsync(a, producer.ExecutionId);
        var onB = new List<WebSocket>();
        for (var i = 0; i < 1000; i += 100)
            onB.AddRange(await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => ConnectAsync(b, producer.ExecutionId))));
        // Each has replayed seq 1 once it arrives, so its feed is listening on Redis.
        await Task.WhenAll(onB.Append(onA).Select(s => StreamClient.ReceiveAsync(s, Ct)));
        var whileWatched = Hub(b).Counters;
        var aWhileWatched = Hub(a).Counters;
        var subscribedOnServer = await NumSubAsync(redis, producer.ExecutionId);

        await producer.WriteAsync(20, Ct);
        await producer.FinishAsync(Ct);
        var received = await Task.WhenAll(onB.Append(onA).Select(s => StreamClient.ReadToCloseAsync(s, Ct)));

        Assert.Equal(1, whileWatched.Feeds);
        Assert.Equal(1000, whileWatched.Subscribers);
        Assert.Equal(1, whileWatched.RedisSubscriptions);
        Assert.Equal(1, aWhileWatched.RedisSubscriptions);
        if (subscribedOnServer is { } count)
            Assert.Equal(2, count);
        Assert.All(received, events => Assert.Equal(StreamClient.Seqs(2, 22), events.Select(e => e.Seq)));
        Assert.True(Hub(b).Counters.ViaRedis >= 21, $"replica B got {Hub(b).Counters} : not through Redis");
        Assert.Equal(0, Hub(b).Counters.ViaLocal);
        await EventuallyAsync(() => Hub(b).Counters is { Feeds: 0, RedisSubscriptions: 0 }, "replica B's feed ended and unsubscribed");
    }

    [Theory]
    [InlineData(RedisKind.Garnet)]
    [InlineData(RedisKind.RedisServer)]
    public async Task RedisStoppedMidStream_SubscribersGetEveryEventFromPostgres_ThenLiveThroughRedisAgain(RedisKind kind)
    {
        RedisServer.SkipUnlessAvailable(kind);
        await using var redis = await RedisServer.StartAsync(kind, Ct);
        var b = Replica(new Dictionary<string, string?>
        {
            ["ConnectionStrings:redis"] = redis.ConnectionString,
            ["Streams:PollMilliseconds"] = "100",
        });
        // The run is on another replica: its publisher reaches this one through Redis only.
        await using var remote = Connect(redis.ConnectionString);
        var publisher = new ExecutionEventPublisher(remote, NullLogger<ExecutionEventPublisher>.Instance);
        await EventuallyAsync(() => remote.IsConnected && Connected(b), "both sides reached Redis");
        await using var producer = await ProducerAsync(publisher);
        using var socket = await ConnectAsync(b, producer.ExecutionId);
        var reading = StreamClient.ReadToCloseAsync(socket, Ct);
        using var stop = new CancellationTokenSource();
        var producing = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await producer.WriteAsync(1, Ct);
                await Task.Delay(20, Ct);
            }
            await producer.FinishAsync(Ct);
        }, Ct);

        await EventuallyAsync(() => Hub(b).Counters.ViaRedis >= 5, "events arrive through Redis");
        await redis.StopAsync();
        var atStop = Hub(b).Counters;
        await EventuallyAsync(() => Hub(b).Counters.ViaDatabase >= atStop.ViaDatabase + 10, "events arrive from PostgreSQL while Redis is down");
        await redis.StartAgainAsync(Ct);
        var atRestart = Hub(b).Counters;
        await EventuallyAsync(() => Hub(b).Counters.ViaRedis >= atRestart.ViaRedis + 10, "events arrive through Redis again", TimeSpan.FromSeconds(30));
        await stop.CancelAsync();
        await producing.WaitAsync(Bound, Ct);
        var received = await reading.WaitAsync(Bound, Ct);

        Assert.Equal(StreamClient.Seqs(1, producer.Seq), received.Select(e => e.Seq));
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
    }

    [Fact]
    public async Task SubscribedWhileRedisWasDown_GoesLiveThroughRedisOnceItIsUp()
    {
        await using var redis = await RedisServer.StartAsync(RedisKind.Garnet, Ct);
        await redis.StopAsync();
        var b = Replica(new Dictionary<string, string?>
        {
            ["ConnectionStrings:redis"] = redis.ConnectionString,
            ["Streams:PollMilliseconds"] = "100",
        });
        await using var remote = Connect(redis.ConnectionString);
        var publisher = new ExecutionEventPublisher(remote, NullLogger<ExecutionEventPublisher>.Instance);
        await using var producer = await ProducerAsync(publisher);
        using var socket = await ConnectAsync(b, producer.ExecutionId);
        await producer.WriteAsync(3, Ct);
        for (var i = 0; i < 3; i++)
            await StreamClient.ReceiveAsync(socket, Ct);

        await redis.StartAgainAsync(Ct);
        await EventuallyAsync(() => remote.IsConnected && Connected(b), "both sides reached Redis", TimeSpan.FromSeconds(30));
        var before = Hub(b).Counters.ViaRedis;
        for (var i = 0; i < 20 && Hub(b).Counters.ViaRedis == before; i++)
        {
            await producer.WriteAsync(1, Ct);
            await StreamClient.ReceiveAsync(socket, Ct);
            await Task.Delay(50, Ct);
        }
        await producer.FinishAsync(Ct);
        var rest = await StreamClient.ReadToCloseAsync(socket, Ct);

        Assert.True(Hub(b).Counters.ViaRedis > before, "no event came through Redis after it started");
        Assert.Equal(AgentLab.Backend.Data.EventTypes.ExecutionCompleted, rest[^1].Type);
        Assert.Equal(producer.Seq, rest[^1].Seq);
    }

    private static bool Connected(BackendFactory factory) => factory.Services.GetRequiredService<RedisConnection>().IsConnected;

    private static Task<WebSocket> ConnectAsync(BackendFactory factory, Guid id) =>
        Support.TestTokens.WebSockets(factory.Server).ConnectAsync(new Uri(factory.Server.BaseAddress, StreamClient.WebSocketPath(id)), Ct).WaitAsync(Bound, Ct);

    private static RedisConnection Connect(string connectionString) =>
        new(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["ConnectionStrings:redis"] = connectionString }).Build(),
            NullLogger<RedisConnection>.Instance);

    /// <summary>Subscribers the server counts on the execution's channel (one per replica), or null if the server does not say.</summary>
    private static async Task<long?> NumSubAsync(RedisServer server, Guid id)
    {
        using var m = await ConnectionMultiplexer.ConnectAsync(server.ConnectionString);
        try
        {
            var reply = (RedisResult[])(await m.GetDatabase().ExecuteAsync("PUBSUB", "NUMSUB", EventChannels.ForExecution(id)).WaitAsync(Bound, Ct))!;
            return (long)reply[1];
        }
        catch (RedisServerException)
        {
            return null;
        }
    }
}
