using System.Text.Json;
using AgentLab.Backend.Events;
using AgentLab.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;

namespace AgentLab.Tests.Backend.Events;

/// <summary>The Backend's Redis connection and publisher against real servers.</summary>
public sealed class RedisConnectionTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(RedisKind.Garnet)]
    [InlineData(RedisKind.RedisServer)]
    public async Task Publish_ReachesASubscriberOfTheExecutionChannel_InSeqOrder(RedisKind kind)
    {
        RedisServer.SkipUnlessAvailable(kind);
        await using var server = await RedisServer.StartAsync(kind, Ct);
        await using var redis = Connect(server.ConnectionString);
        var m = await redis.Connection;
        Assert.NotNull(m);
        Assert.True(redis.IsConnected);
        var id = Guid.CreateVersion7();
        var received = new List<ExecutionEvent>();
        var all = new TaskCompletionSource();
        await m.GetSubscriber().SubscribeAsync(EventChannels.ForExecution(id), (_, value) =>
        {
            lock (received)
            {
                received.Add(ExecutionEventJson.Parse((byte[])value!)!);
                if (received.Count == 100)
                    all.TrySetResult();
            }
        });
        var publisher = new ExecutionEventPublisher(redis, NullLogger<ExecutionEventPublisher>.Instance);
        var local = 0;
        publisher.Local += _ => Interlocked.Increment(ref local);

        for (var seq = 1; seq <= 100; seq++)
            publisher.Publish(new ExecutionEvent(id, seq, "token", "executor", JsonDocument.Parse($$"""{"text":"t{{seq}}","tokens":1}""").RootElement, DateTimeOffset.UtcNow));

        await all.Task.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal(Enumerable.Range(1, 100).Select(i => (long)i), received.Select(e => e.Seq));
        Assert.Equal("t42", received[41].Data.GetProperty("text").GetString());
        Assert.Equal(100, local);
    }

    [Fact]
    public async Task NothingListening_StartsAtOnceAndPublishingDoesNotThrow()
    {
        var port = AgentLab.Tests.AppHost.InfrastructureTestKit.FreePort();
        await using var redis = Connect($"127.0.0.1:{port}");
        var publisher = new ExecutionEventPublisher(redis, NullLogger<ExecutionEventPublisher>.Instance);

        await redis.Connection.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        publisher.Publish(new ExecutionEvent(Guid.NewGuid(), 1, "log", null, JsonDocument.Parse("{}").RootElement, DateTimeOffset.UtcNow));

        Assert.True(redis.IsConfigured);
        Assert.False(redis.IsConnected);
        Assert.Null(redis.Subscriber);
    }

    private static RedisConnection Connect(string connectionString) =>
        new(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["ConnectionStrings:redis"] = connectionString }).Build(),
            NullLogger<RedisConnection>.Instance);
}
