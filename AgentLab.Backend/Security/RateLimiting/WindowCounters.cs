using System.Collections.Concurrent;

namespace AgentLab.Backend.Security.RateLimiting;

/// <summary>
/// The in-process counters of fixed windows: used when Redis is not configured, and while it is away (then every
/// replica counts on its own). Keys carry their window, so a new window starts from zero; old windows are dropped
/// once a minute.
/// </summary>
internal sealed class MemoryWindowCounters
{
    private readonly ConcurrentDictionary<string, Entry> entries = new(StringComparer.Ordinal);
    private long sweptWindow;

    public long Increment(string key, long window)
    {
        if (Interlocked.Exchange(ref sweptWindow, window) != window)
            Sweep(window);
        var entry = entries.GetOrAdd(key, static (_, w) => new Entry(w), window);
        return Interlocked.Increment(ref entry.Count);
    }

    /// <summary>How many windows are held (for tests).</summary>
    public int Count => entries.Count;

    private void Sweep(long window)
    {
        foreach (var (key, entry) in entries)
        {
            if (entry.Window < window)
                entries.TryRemove(key, out _);
        }
    }

    private sealed class Entry(long window)
    {
        public readonly long Window = window;
        public long Count;
    }
}
