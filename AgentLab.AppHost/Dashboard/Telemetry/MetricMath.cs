namespace AgentLab.AppHost.Dashboard.Telemetry;

/// <summary>One exported value of a metric series: a number (gauge, sum) or a <paramref name="Histogram"/> (count, sum in <paramref name="Value"/>, buckets).</summary>
/// <param name="Delta">DELTA temporality: the point is already the change since <paramref name="StartNanos"/>.</param>
/// <param name="Monotonic">A counter or histogram: a cumulative value that goes down was reset.</param>
public readonly record struct MetricPoint(
    ulong StartNanos,
    ulong TimeNanos,
    bool Delta,
    bool Monotonic,
    double Value,
    ulong Count = 0,
    ulong[]? Buckets = null,
    double[]? Bounds = null,
    bool Histogram = false);

/// <summary>The points of one series, oldest first.</summary>
/// <param name="NewSinceNanos">
/// When known, the time before which the series did not exist (the resource's previous export, or the start time of
/// its first export): its first cumulative point is then all new over that span. 0 = unknown (the first point is a baseline).
/// </param>
public readonly record struct SeriesPoints(IReadOnlyList<MetricPoint> Points, ulong NewSinceNanos = 0);

/// <summary>What changed over one export interval, summed across the series (attribute sets) given.</summary>
/// <param name="Value">Σ Δsum (numbers) or Σ Δcount (histograms).</param>
/// <param name="Buckets">Σ Δbucket counts (histograms whose bounds match the first series seen), else null.</param>
public sealed record MetricInterval(ulong TimeNanos, double Seconds, double Value, ulong[]? Buckets, double[]? Bounds)
{
    public double Rate => Seconds > 0 ? Value / Seconds : 0;
}

/// <summary>Rates and percentiles from successive OTLP points (cumulative or delta), as the dashboard's charts show them.</summary>
public static class MetricMath
{
    /// <summary>
    /// The per-interval changes of a metric over several series of one resource, ordered by time. Cumulative points
    /// become differences between successive exports; the first export is only a baseline. A reset (the start time
    /// changes, or a counter goes down) counts the new value from zero, so a rate is never negative. A series that
    /// first appears after the first export is new since the previous one (cumulative exporters send every series
    /// each time), so all of its value is that interval's. Delta points are the change since their own start time.
    /// </summary>
    public static IReadOnlyList<MetricInterval> Intervals(IEnumerable<IReadOnlyList<MetricPoint>> series) =>
        Intervals(series.Select(points => new SeriesPoints(points)));

    /// <inheritdoc cref="Intervals(IEnumerable{IReadOnlyList{MetricPoint}})"/>
    public static IReadOnlyList<MetricInterval> Intervals(IEnumerable<SeriesPoints> series)
    {
        var all = series.Select(s => (Points: Ordered(s.Points), s.NewSinceNanos)).Where(s => s.Points.Count > 0).ToList();
        var times = all.SelectMany(s => s.Points).Select(p => p.TimeNanos).Distinct().Order().ToArray();
        var byTime = new SortedDictionary<ulong, Accumulator>();
        foreach (var (points, newSince) in all)
        {
            for (var j = 0; j < points.Count; j++)
            {
                var current = points[j];
                var i = Array.BinarySearch(times, current.TimeNanos);
                var previousExport = i > 0 ? times[i - 1] : 0UL;
                double seconds;
                MetricPoint change;
                if (current.Delta)
                {
                    var from = current.StartNanos > 0 && current.StartNanos < current.TimeNanos ? current.StartNanos : previousExport;
                    if (from == 0)
                        continue;
                    seconds = (current.TimeNanos - from) / 1e9;
                    change = current;
                }
                else if (j == 0 && newSince > 0 && newSince < current.TimeNanos)
                {
                    seconds = (current.TimeNanos - newSince) / 1e9;
                    change = current;
                }
                else
                {
                    if (i == 0)
                        continue; // a baseline: nothing to compare it with
                    seconds = (current.TimeNanos - previousExport) / 1e9;
                    change = j == 0 ? current : Difference(points[j - 1], current);
                }
                if (!byTime.TryGetValue(current.TimeNanos, out var accumulator))
                    byTime[current.TimeNanos] = accumulator = new Accumulator();
                accumulator.Add(change, seconds);
            }
        }
        return byTime.Select(e => e.Value.ToInterval(e.Key)).ToList();
    }

    /// <summary>
    /// The <paramref name="quantile"/> (0–1) of a histogram's bucket counts, interpolating linearly within the bucket
    /// (the first bucket starts at 0, or at its bound if that is negative); the overflow bucket (+Inf) answers its
    /// lower bound, the largest explicit bound. Null when there is no count.
    /// </summary>
    public static double? Percentile(IReadOnlyList<ulong> buckets, IReadOnlyList<double> bounds, double quantile)
    {
        ArgumentNullException.ThrowIfNull(buckets);
        ArgumentNullException.ThrowIfNull(bounds);
        ulong total = 0;
        foreach (var count in buckets)
            total += count;
        if (total == 0)
            return null;
        var rank = Math.Clamp(quantile, 0, 1) * total;
        double below = 0;
        for (var i = 0; i < buckets.Count; i++)
        {
            var count = buckets[i];
            if (count > 0 && below + count >= rank)
            {
                if (i >= bounds.Count)
                    return bounds.Count > 0 ? bounds[^1] : null;
                var upper = bounds[i];
                var lower = i == 0 ? Math.Min(0, upper) : bounds[i - 1];
                return lower + ((upper - lower) * Math.Max(0, rank - below) / count);
            }
            below += count;
        }
        return bounds.Count > 0 ? bounds[^1] : null;
    }

    private static List<MetricPoint> Ordered(IReadOnlyList<MetricPoint> points)
    {
        // One point per export time: a repeated export (a retry) would count twice.
        var ordered = new List<MetricPoint>(points.Count);
        foreach (var point in points.OrderBy(p => p.TimeNanos))
        {
            if (ordered.Count == 0 || ordered[^1].TimeNanos != point.TimeNanos)
                ordered.Add(point);
        }
        return ordered;
    }

    private static MetricPoint Difference(MetricPoint previous, MetricPoint current)
    {
        var restarted = previous.StartNanos != current.StartNanos && previous.StartNanos != 0 && current.StartNanos != 0;
        var wentDown = current.Monotonic && (current.Value < previous.Value || current.Count < previous.Count);
        if (restarted || wentDown)
            return current;
        ulong[]? buckets = null;
        if (current.Buckets is { } now && previous.Buckets is { } before && now.Length == before.Length && SameBounds(previous.Bounds, current.Bounds))
        {
            buckets = new ulong[now.Length];
            for (var k = 0; k < now.Length; k++)
            {
                if (now[k] < before[k])
                    return current; // a bucket went down: a reset the count did not show
                buckets[k] = now[k] - before[k];
            }
        }
        return current with { Value = current.Value - previous.Value, Count = current.Count - previous.Count, Buckets = buckets };
    }

    private static bool SameBounds(double[]? a, double[]? b) =>
        a is null ? b is null : b is not null && a.AsSpan().SequenceEqual(b);

    private sealed class Accumulator
    {
        private double _value;
        private double _seconds;
        private ulong[]? _buckets;
        private double[]? _bounds;

        public void Add(MetricPoint change, double seconds)
        {
            _seconds = Math.Max(_seconds, seconds);
            _value += change.Histogram ? change.Count : change.Value;
            if (change.Buckets is not { } buckets || change.Bounds is not { } bounds || buckets.Length != bounds.Length + 1)
                return;
            if (_buckets is null)
            {
                _buckets = (ulong[])buckets.Clone();
                _bounds = bounds;
            }
            else if (SameBounds(_bounds, bounds))
            {
                for (var k = 0; k < buckets.Length; k++)
                    _buckets[k] += buckets[k];
            }
        }

        public MetricInterval ToInterval(ulong time) => new(time, _seconds, _value, _buckets, _bounds);
    }
}
