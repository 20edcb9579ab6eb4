using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Streams;

/// <summary>The streams open on this replica: the <c>Streams:MaxConnections</c> cap, and their signal to close on shutdown.</summary>
public sealed class OpenStreams
{
    private readonly StreamOptions options;
    private int count;

    public OpenStreams(IOptions<StreamOptions> options, IHostApplicationLifetime lifetime, ILogger<OpenStreams> logger)
    {
        this.options = options.Value;
        Stopping = lifetime.ApplicationStopping;
        // Each stream closes itself with a resume hint on this token; the host does not wait for clients to go.
        Stopping.Register(() =>
        {
            if (Volatile.Read(ref count) > 0)
                logger.StreamsClosingOnShutdown();
        });
    }

    /// <summary>Streams open now (WebSocket and SSE).</summary>
    public int Count => Volatile.Read(ref count);

    public CancellationToken Stopping { get; }

    /// <summary>True when another stream would go over the cap (checked before the upgrade, so the client gets a 503).</summary>
    public bool IsFull => Volatile.Read(ref count) >= options.MaxConnections;

    public int Max => options.MaxConnections;

    /// <summary>Counts one open stream until disposed.</summary>
    internal Slot Enter()
    {
        Interlocked.Increment(ref count);
        return new Slot(this);
    }

    internal readonly struct Slot(OpenStreams owner) : IDisposable
    {
        public void Dispose() => Interlocked.Decrement(ref owner.count);
    }
}
