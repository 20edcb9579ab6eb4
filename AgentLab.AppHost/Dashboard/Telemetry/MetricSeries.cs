using System.Text;
using AgentLab.AppHost.Dashboard.Telemetry.Otlp;

namespace AgentLab.AppHost.Dashboard.Telemetry;

/// <summary>One time series: a resource's metric with one attribute set, holding at most MaxMetricPoints points.</summary>
internal sealed class MetricSeries
{
    public const string GaugeType = "gauge";
    public const string SumType = "sum";
    public const string HistogramType = "histogram";
    public const string OtherType = "other";

    private static readonly Ring<MetricPoint> NoPoints = new(1);

    public required string Key { get; init; }
    public required string Resource { get; init; }
    public required string Name { get; init; }
    public required string Unit { get; init; }
    public required string Type { get; init; }
    public required IReadOnlyDictionary<string, object?> Attributes { get; init; }
    public Ring<MetricPoint> Points { get; private init; } = NoPoints;

    /// <summary>See <see cref="SeriesPoints.NewSinceNanos"/>; cleared once a point is dropped (the first kept point is then old).</summary>
    public ulong NewSinceNanos { get; set; }

    /// <summary>The store's clock at the last update: the least recently updated series is evicted first.</summary>
    public long Touched { get; set; }

    public MetricSeries WithCapacity(int capacity) => new()
    {
        Key = Key, Resource = Resource, Name = Name, Unit = Unit, Type = Type, Attributes = Attributes,
        Points = new Ring<MetricPoint>(capacity),
    };

    /// <summary>The series (without storage yet) and points of one received metric, one entry per attribute set.</summary>
    public static IEnumerable<(MetricSeries Shape, List<MetricPoint> Points)> From(Metric metric, string resource, ulong nowNanos)
    {
        var name = OtlpValues.Cut(metric.Name, OtlpValues.MaxNameChars);
        var unit = OtlpValues.Cut(metric.Unit, OtlpValues.MaxNameChars);
        var found = new Dictionary<string, (MetricSeries Shape, List<MetricPoint> Points)>(StringComparer.Ordinal);

        void Add(string type, Google.Protobuf.Collections.RepeatedField<KeyValue> rawAttributes, MetricPoint? point)
        {
            var attributes = OtlpValues.Attributes(rawAttributes);
            var key = KeyOf(resource, name, type, attributes);
            if (!found.TryGetValue(key, out var entry))
            {
                entry = (new MetricSeries { Key = key, Resource = resource, Name = name, Unit = unit, Type = type, Attributes = attributes }, []);
                found[key] = entry;
            }
            if (point is { } p)
                entry.Points.Add(p.TimeNanos == 0 ? p with { TimeNanos = nowNanos } : p);
        }

        switch (metric.DataCase)
        {
            case Metric.DataOneofCase.Gauge:
                foreach (var p in metric.Gauge.DataPoints)
                    Add(GaugeType, p.Attributes, new MetricPoint(p.StartTimeUnixNano, p.TimeUnixNano, Delta: false, Monotonic: false, Number(p)));
                break;
            case Metric.DataOneofCase.Sum:
                var sumDelta = metric.Sum.AggregationTemporality == AggregationTemporality.Delta;
                foreach (var p in metric.Sum.DataPoints)
                    Add(SumType, p.Attributes, new MetricPoint(p.StartTimeUnixNano, p.TimeUnixNano, sumDelta, metric.Sum.IsMonotonic, Number(p)));
                break;
            case Metric.DataOneofCase.Histogram:
                var histogramDelta = metric.Histogram.AggregationTemporality == AggregationTemporality.Delta;
                foreach (var p in metric.Histogram.DataPoints)
                {
                    Add(HistogramType, p.Attributes, new MetricPoint(p.StartTimeUnixNano, p.TimeUnixNano, histogramDelta, Monotonic: true,
                        p.HasSum ? p.Sum : 0, p.Count, [.. p.BucketCounts], [.. p.ExplicitBounds], Histogram: true));
                }
                break;
            default:
                // Exponential histograms and summaries are not read: the metric is still listed among the instruments.
                Add(OtherType, [], null);
                break;
        }
        return found.Values;
    }

    private static double Number(NumberDataPoint point) =>
        point.ValueCase == NumberDataPoint.ValueOneofCase.AsInt ? point.AsInt : point.AsDouble;

    private static string KeyOf(string resource, string name, string type, Dictionary<string, object?> attributes)
    {
        var key = new StringBuilder().Append(resource).Append('\n').Append(name).Append('\n').Append(type);
        foreach (var (k, v) in attributes.OrderBy(a => a.Key, StringComparer.Ordinal))
            key.Append('\n').Append(k).Append('=').Append(OtlpValues.Text(v));
        return key.ToString();
    }
}
