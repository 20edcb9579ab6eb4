namespace AgentLab.AppHost.Hosting;

/// <summary>One captured console line of a resource; <see cref="Sequence"/> counts from 1 per resource.</summary>
public sealed record LogLine(DateTimeOffset Timestamp, string Resource, string Text, bool IsError, long Sequence = 0);

/// <summary>
/// The last <see cref="Capacity"/> console lines of one resource (stdout and stderr, in arrival order). Bounded so a
/// chatty service that runs for days cannot grow the AppHost; the dashboard reads <see cref="After"/> and follows
/// <see cref="LineWritten"/>.
/// </summary>
public sealed class ResourceLog(string resource, int capacity)
{
    private readonly LogLine[] _lines = new LogLine[Math.Max(1, capacity)];
    private readonly Lock _gate = new();
    private int _next;
    private int _count;
    private long _sequence;

    public string Resource { get; } = resource;

    public int Capacity => _lines.Length;

    /// <summary>The sequence number of the newest line (0 before the first).</summary>
    public long LastSequence
    {
        get { lock (_gate) return _sequence; }
    }

    /// <summary>Raised after a line is stored, on the thread that read it; handlers must be quick.</summary>
    public event Action<LogLine>? LineWritten;

    public void Write(string text, bool isError = false)
    {
        LogLine line;
        lock (_gate)
        {
            // Numbered under the lock: stdout and stderr are read on two threads, the numbers still follow storage order.
            line = new LogLine(DateTimeOffset.UtcNow, Resource, text, isError, ++_sequence);
            _lines[_next] = line;
            _next = (_next + 1) % _lines.Length;
            _count = Math.Min(_count + 1, _lines.Length);
        }
        LineWritten?.Invoke(line);
    }

    /// <summary>The kept lines, oldest first.</summary>
    public IReadOnlyList<LogLine> Snapshot() => After(0);

    /// <summary>
    /// The kept lines with a sequence number above <paramref name="sequence"/>, oldest first; at most
    /// <paramref name="max"/> of them (the oldest of those, so a reader that pages forward misses nothing still kept).
    /// </summary>
    public IReadOnlyList<LogLine> After(long sequence, int max = int.MaxValue)
    {
        lock (_gate)
        {
            // Kept lines are numbered _sequence-_count+1 .. _sequence without holes: skip straight to the first wanted.
            var firstKept = _sequence - _count + 1;
            var skip = (int)Math.Clamp(sequence - firstKept + 1, 0, _count);
            var take = Math.Min(_count - skip, Math.Max(0, max));
            var result = new LogLine[take];
            var start = (_next - _count + skip + 2 * _lines.Length) % _lines.Length;
            for (var i = 0; i < take; i++)
                result[i] = _lines[(start + i) % _lines.Length];
            return result;
        }
    }

    /// <summary>The last <paramref name="count"/> lines as text, for failure messages.</summary>
    public string Tail(int count)
    {
        var lines = Snapshot();
        return string.Join(Environment.NewLine, lines.Skip(Math.Max(0, lines.Count - count)).Select(l => l.Text));
    }
}
