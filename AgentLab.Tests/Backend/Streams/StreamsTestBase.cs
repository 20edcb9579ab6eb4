using AgentLab.Backend.Events;
using Microsoft.Extensions.DependencyInjection;

namespace AgentLab.Tests.Backend.Streams;

/// <summary>Backends for stream tests: in memory (TestServer WebSockets) or on a real socket, all disposed after the test.</summary>
public abstract class StreamsTestBase : BackendTestBase
{
    /// <summary>An in-memory Backend (its HttpClient and WebSocket client go through TestServer).</summary>
    protected BackendFactory Replica(IReadOnlyDictionary<string, string?>? settings = null)
    {
        Backend(settings, out var factory);
        return factory;
    }

    /// <summary>A Backend on a real Kestrel socket (the caller disposes it: <c>await using</c>), with its base address.</summary>
    protected (BackendFactory Factory, Uri Address) KestrelReplica(IReadOnlyDictionary<string, string?>? settings = null)
    {
        var all = new Dictionary<string, string?>(settings ?? new Dictionary<string, string?>()) { ["urls"] = "http://127.0.0.1:0" };
        var factory = new BackendFactory(Lab.BaseAddress, Database.ConnectionString, all);
        return (factory, KestrelBackend.Start(factory));
    }

    protected static ExecutionEventHub Hub(BackendFactory factory) => factory.Services.GetRequiredService<ExecutionEventHub>();

    protected static ExecutionEventPublisher Publisher(BackendFactory factory) => factory.Services.GetRequiredService<ExecutionEventPublisher>();

    protected Task<StreamProducer> ProducerAsync(ExecutionEventPublisher publisher, string status = AgentLab.Backend.Data.ExecutionStatus.Running) =>
        StreamProducer.StartAsync(Database, publisher, Ct, status);

    /// <summary>Waits (bounded) until <paramref name="condition"/> holds.</summary>
    protected static async Task EventuallyAsync(Func<bool> condition, string what, TimeSpan? bound = null)
    {
        var deadline = DateTime.UtcNow + (bound ?? Bound);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"Timed out waiting until {what}.");
            await Task.Delay(20, Ct);
        }
    }
}
