namespace AgentLab.AppHost.Dashboard.Telemetry;

/// <summary>A fixed-capacity buffer that overwrites its oldest item. Not thread-safe: the store holds a lock around it.</summary>
internal sealed class Ring<T>(int capacity)
{
    private readonly T[] _items = new T[capacity];
    private int _start;

    public int Count { get; private set; }

    public int Capacity => _items.Length;

    /// <summary>Appends <paramref name="item"/>; when full, the oldest item goes out through <paramref name="evicted"/>.</summary>
    public bool Add(T item, out T evicted)
    {
        if (Count < _items.Length)
        {
            _items[(_start + Count) % _items.Length] = item;
            Count++;
            evicted = default!;
            return false;
        }
        evicted = _items[_start];
        _items[_start] = item;
        _start = (_start + 1) % _items.Length;
        return true;
    }

    public T Newest => Count == 0 ? throw new InvalidOperationException("The ring is empty.") : this[Count - 1];

    /// <summary>The i-th item, oldest first.</summary>
    public T this[int index] => _items[(_start + index) % _items.Length];

    public IEnumerable<T> NewestFirst()
    {
        for (var i = Count - 1; i >= 0; i--)
            yield return this[i];
    }

    public T[] ToArray()
    {
        var copy = new T[Count];
        for (var i = 0; i < Count; i++)
            copy[i] = this[i];
        return copy;
    }
}
