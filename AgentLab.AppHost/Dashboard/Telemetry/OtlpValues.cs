using System.Globalization;
using System.Text;
using AgentLab.AppHost.Dashboard.Telemetry.Otlp;
using Google.Protobuf;
using Google.Protobuf.Collections;

namespace AgentLab.AppHost.Dashboard.Telemetry;

/// <summary>From OTLP's wire values to what the store keeps: bounded strings and attribute sets, hex ids, times.</summary>
internal static class OtlpValues
{
    /// <summary>Longest attribute value kept (characters); longer ones are cut and end with "…".</summary>
    public const int MaxValueChars = 4096;

    /// <summary>Most attributes kept per span, event, log record or metric series (and elements per array).</summary>
    public const int MaxAttributes = 128;

    public const int MaxNameChars = 1024;

    public const string ServiceNameKey = "service.name";

    public const string UnknownService = "unknown_service";

    public static string Cut(string value, int max = MaxValueChars)
    {
        if (value.Length <= max)
            return value;
        // Never split a surrogate pair: the JSON writer would turn half of one into U+FFFD.
        var cut = char.IsHighSurrogate(value[max - 1]) ? max - 1 : max;
        return string.Concat(value.AsSpan(0, cut), "…");
    }

    public static string ResourceName(Resource? resource)
    {
        if (resource is not null)
        {
            foreach (var attribute in resource.Attributes)
            {
                if (attribute.Key == ServiceNameKey && attribute.Value is { ValueCase: AnyValue.ValueOneofCase.StringValue } value
                    && value.StringValue.Length > 0)
                    return Cut(value.StringValue, MaxNameChars);
            }
        }
        return UnknownService;
    }

    public static Dictionary<string, object?> Attributes(RepeatedField<KeyValue> source)
    {
        var result = new Dictionary<string, object?>(Math.Min(source.Count, MaxAttributes), StringComparer.Ordinal);
        foreach (var attribute in source)
        {
            if (result.Count >= MaxAttributes)
                break;
            result[Cut(attribute.Key, MaxNameChars)] = Value(attribute.Value);
        }
        return result;
    }

    /// <summary>string, long, double, bool, or object?[] of those; maps and bytes become text (the API's value types).</summary>
    public static object? Value(AnyValue? value, int depth = 0) => value?.ValueCase switch
    {
        AnyValue.ValueOneofCase.StringValue => Cut(value.StringValue),
        AnyValue.ValueOneofCase.BoolValue => value.BoolValue,
        AnyValue.ValueOneofCase.IntValue => value.IntValue,
        // JSON has no NaN or Infinity: the serializer would throw mid-response.
        AnyValue.ValueOneofCase.DoubleValue => double.IsFinite(value.DoubleValue)
            ? value.DoubleValue
            : value.DoubleValue.ToString(CultureInfo.InvariantCulture),
        AnyValue.ValueOneofCase.ArrayValue when depth == 0 =>
            value.ArrayValue.Values.Take(MaxAttributes).Select(v => Value(v, depth + 1)).ToArray(),
        AnyValue.ValueOneofCase.ArrayValue or AnyValue.ValueOneofCase.KvlistValue => Cut(Describe(value)),
        AnyValue.ValueOneofCase.BytesValue => Cut(Convert.ToBase64String(value.BytesValue.Span)),
        _ => null,
    };

    /// <summary>A value as text, for searching and for messages whose body is not a string.</summary>
    public static string Text(object? value) => value switch
    {
        null => "",
        string s => s,
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        object?[] items => "[" + string.Join(", ", items.Select(Text)) + "]",
        _ => value.ToString() ?? "",
    };

    /// <summary>Lowercase hex of a trace or span id; null when absent or all zeros (an invalid id in W3C terms).</summary>
    public static string? Id(ByteString bytes)
    {
        if (bytes.IsEmpty || !bytes.Span.ContainsAnyExcept((byte)0))
            return null;
        return Convert.ToHexStringLower(bytes.Span);
    }

    public static DateTimeOffset Time(ulong unixNanos) => DateTimeOffset.UnixEpoch.AddTicks((long)(unixNanos / 100));

    public static ulong Nanos(DateTimeOffset time) => (ulong)(time - DateTimeOffset.UnixEpoch).Ticks * 100;

    public static double Milliseconds(ulong fromNanos, ulong toNanos) => toNanos > fromNanos ? (toNanos - fromNanos) / 1e6 : 0;

    private static string Describe(AnyValue value)
    {
        var text = new StringBuilder();
        Append(text, value);
        return text.ToString();
    }

    private static void Append(StringBuilder text, AnyValue? value)
    {
        // Bounded by the size of the payload (32 MiB) and cut afterwards; nesting is rare in practice.
        switch (value?.ValueCase)
        {
            case AnyValue.ValueOneofCase.ArrayValue:
                text.Append('[');
                for (var i = 0; i < value.ArrayValue.Values.Count && text.Length <= MaxValueChars; i++)
                {
                    if (i > 0)
                        text.Append(", ");
                    Append(text, value.ArrayValue.Values[i]);
                }
                text.Append(']');
                break;
            case AnyValue.ValueOneofCase.KvlistValue:
                text.Append('{');
                for (var i = 0; i < value.KvlistValue.Values.Count && text.Length <= MaxValueChars; i++)
                {
                    if (i > 0)
                        text.Append(", ");
                    text.Append(value.KvlistValue.Values[i].Key).Append(": ");
                    Append(text, value.KvlistValue.Values[i].Value);
                }
                text.Append('}');
                break;
            default:
                text.Append(Text(Value(value, depth: 1)));
                break;
        }
    }
}
