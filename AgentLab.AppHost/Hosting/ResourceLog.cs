namespace AgentLab.AppHost.Hosting;

/// <summary>One captured console line of a resource.</summary>
public sealed record LogLine(DateTimeOffset Timestamp, string Resource, string Text, bool IsError);

/// <summary>
/// The last <see cref="Capacity"/> console lines of one resource (stdout and stderr, in arrival order). Bounded so a
/// chatty service that runs for days cannot grow the AppHost; the dashboard reads <see cref="Snapshot"/> and follows
/// <see cref="LineWritten"/>.
/// </summary>
public sealed class ResourceLog(string resource, int capacity)
{
    private readonly LogLine[] _lines = new LogLine[Math.Max(1, capacity)];
    private readonly Lock _gate = new();
    private int _next;
    private int _count;

    public string Resource { get; } = resource;

    public int Capacity => _lines.Length;

    /// <summary>Raised after a line is stored, on the thread that read it; handlers must be quick.</summary>
    public event Action<LogLine>? LineWritten;

    public void Write(string text, bool isError = false)
    {
        var line = new LogLine(DateTimeOffset.UtcNow, Resource, text, isError);
        lock (_gate)
        {
            _lines[_next] = line;
            _next = (_next + 1) % _lines.Length;
            _count = Math.Min(_count + 1, _lines.Length);
        }
        LineWritten?.Invoke(line);
    }

    /// <summary>The kept lines, oldest first.</summary>
    public IReadOnlyList<LogLine> Snapshot()
    {
        lock (_gate)
        {
            var result = new LogLine[_count];
            var start = (_next - _count + _lines.Length) % _lines.Length;
            for (var i = 0; i < _count; i++)
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
