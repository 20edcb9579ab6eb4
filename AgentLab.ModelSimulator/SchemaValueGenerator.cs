using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace AgentLab.ModelSimulator;

/// <summary>
/// Writes a JSON value that is valid against a JSON Schema (the subset models are asked for: object, string with
/// enum/minLength/maxLength/format, integer/number with bounds, boolean, array with items/minItems/maxItems, null,
/// anyOf/oneOf, local $ref). Used for <c>format</c> and for tool-call arguments.
/// </summary>
public static class SchemaValueGenerator
{
    private const int MaxDepth = 8;

    // A model writes non-ASCII text as it is, not as \u escapes.
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static readonly string[] FillerWords =
        ["value", "example", "result", "summary", "detail", "item", "sample", "note", "topic", "answer"];

    /// <summary>A JSON document valid against <paramref name="schema"/>, as compact text.</summary>
    public static string Generate(JsonElement schema, DeterministicRandom rng, IReadOnlyList<string> words)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
            WriteValue(writer, schema, schema, rng, words, propertyName: null, depth: 0);
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>What a model answers for <c>"format":"json"</c>: some JSON object about the topic.</summary>
    public static string GenerateFreeObject(DeterministicRandom rng, IReadOnlyList<string> words, string sentence)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("answer", sentence);
            writer.WriteString("topic", words.Count > 0 ? words[0] : "general");
            writer.WriteStartArray("keywords");
            foreach (var word in words.Take(3))
                writer.WriteStringValue(word);
            writer.WriteEndArray();
            writer.WriteNumber("confidence", Math.Round(0.5 + rng.NextDouble() * 0.49, 2));
            writer.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteValue(Utf8JsonWriter w, JsonElement schema, JsonElement root, DeterministicRandom rng,
        IReadOnlyList<string> words, string? propertyName, int depth)
    {
        if (schema.ValueKind == JsonValueKind.True || schema.ValueKind != JsonValueKind.Object)
        {
            w.WriteStringValue(Word(rng, words));
            return;
        }
        if (schema.TryGetProperty("$ref", out var reference) && Resolve(root, reference.GetString()) is { } target && depth < MaxDepth)
        {
            WriteValue(w, target, root, rng, words, propertyName, depth + 1);
            return;
        }
        if (schema.TryGetProperty("const", out var constant))
        {
            constant.WriteTo(w);
            return;
        }
        if (schema.TryGetProperty("enum", out var options) && options.ValueKind == JsonValueKind.Array && options.GetArrayLength() > 0)
        {
            options[rng.Next(options.GetArrayLength())].WriteTo(w);
            return;
        }
        foreach (var combinator in (ReadOnlySpan<string>)["anyOf", "oneOf", "allOf"])
        {
            // The first alternative is enough for anyOf/oneOf; allOf lists in practice carry one real schema.
            if (schema.TryGetProperty(combinator, out var alternatives) && alternatives.ValueKind == JsonValueKind.Array
                && alternatives.GetArrayLength() > 0 && depth < MaxDepth)
            {
                var chosen = alternatives.EnumerateArray().FirstOrDefault(a => TypeOf(a) != "null");
                WriteValue(w, chosen.ValueKind == JsonValueKind.Undefined ? alternatives[0] : chosen, root, rng, words, propertyName, depth + 1);
                return;
            }
        }

        switch (TypeOf(schema))
        {
            case "object":
                WriteObject(w, schema, root, rng, words, depth);
                break;
            case "array":
                WriteArray(w, schema, root, rng, words, propertyName, depth);
                break;
            case "integer":
                w.WriteNumberValue(Integer(schema, rng));
                break;
            case "number":
                w.WriteNumberValue(Number(schema, rng));
                break;
            case "boolean":
                w.WriteBooleanValue(rng.Next(2) == 1);
                break;
            case "null":
                w.WriteNullValue();
                break;
            default:
                w.WriteStringValue(String(schema, rng, words, propertyName));
                break;
        }
    }

    private static void WriteObject(Utf8JsonWriter w, JsonElement schema, JsonElement root, DeterministicRandom rng,
        IReadOnlyList<string> words, int depth)
    {
        w.WriteStartObject();
        if (depth < MaxDepth && schema.TryGetProperty("properties", out var properties) && properties.ValueKind == JsonValueKind.Object)
        {
            // Every declared property is written: required ones must be, optional ones are allowed.
            foreach (var property in properties.EnumerateObject())
            {
                w.WritePropertyName(property.Name);
                WriteValue(w, property.Value, root, rng, words, property.Name, depth + 1);
            }
        }
        w.WriteEndObject();
    }

    private static void WriteArray(Utf8JsonWriter w, JsonElement schema, JsonElement root, DeterministicRandom rng,
        IReadOnlyList<string> words, string? propertyName, int depth)
    {
        var min = GetInt(schema, "minItems") ?? 0;
        var max = GetInt(schema, "maxItems") ?? Math.Max(min, 3);
        var count = Math.Clamp(Math.Max(min, 1 + rng.Next(3)), min, Math.Max(min, max));
        var items = schema.TryGetProperty("items", out var i) ? i : default;
        var unique = schema.TryGetProperty("uniqueItems", out var u) && u.ValueKind == JsonValueKind.True;

        w.WriteStartArray();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int written = 0, attempts = 0; written < count && depth < MaxDepth && attempts < count * 8; attempts++)
        {
            var value = Generate(items.ValueKind == JsonValueKind.Undefined ? default : items, root, rng, words, propertyName, depth + 1);
            if (unique && !seen.Add(value))
                continue;
            w.WriteRawValue(value, skipInputValidation: true);
            written++;
        }
        w.WriteEndArray();
    }

    private static string Generate(JsonElement schema, JsonElement root, DeterministicRandom rng, IReadOnlyList<string> words,
        string? propertyName, int depth)
    {
        var buffer = new ArrayBufferWriter<byte>(64);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
            WriteValue(writer, schema, root, rng, words, propertyName, depth);
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static string TypeOf(JsonElement schema)
    {
        if (schema.ValueKind != JsonValueKind.Object)
            return "string";
        if (schema.TryGetProperty("type", out var type))
        {
            if (type.ValueKind == JsonValueKind.String)
                return type.GetString() ?? "string";
            if (type.ValueKind == JsonValueKind.Array)
            {
                // ["string","null"]: produce the real value, not the null.
                var first = type.EnumerateArray().Select(t => t.GetString()).FirstOrDefault(t => t is not null and not "null");
                return first ?? "null";
            }
        }
        if (schema.TryGetProperty("properties", out _)) return "object";
        if (schema.TryGetProperty("items", out _)) return "array";
        return "string";
    }

    private static long Integer(JsonElement schema, DeterministicRandom rng)
    {
        var min = GetDouble(schema, "minimum") ?? (GetDouble(schema, "exclusiveMinimum") is { } em ? Math.Floor(em) + 1 : (double?)null);
        var max = GetDouble(schema, "maximum") ?? (GetDouble(schema, "exclusiveMaximum") is { } eM ? Math.Ceiling(eM) - 1 : (double?)null);
        var lo = (long)Math.Ceiling(min ?? (max is { } m ? Math.Min(0, m - 100) : 0));
        var hi = (long)Math.Floor(max ?? lo + 100);
        return hi <= lo ? lo : lo + (long)(rng.NextULong() % (ulong)(hi - lo + 1));
    }

    private static double Number(JsonElement schema, DeterministicRandom rng)
    {
        var exclusiveMin = GetDouble(schema, "exclusiveMinimum");
        var exclusiveMax = GetDouble(schema, "exclusiveMaximum");
        var lo = GetDouble(schema, "minimum") ?? exclusiveMin ?? Math.Min(0, (GetDouble(schema, "maximum") ?? exclusiveMax ?? 100) - 100);
        var hi = GetDouble(schema, "maximum") ?? exclusiveMax ?? lo + 100;
        if (hi <= lo)
            return lo;
        // Stay strictly inside so rounding to two decimals never leaves the range or touches an exclusive bound.
        var value = Math.Round(lo + (hi - lo) * (0.05 + 0.9 * rng.NextDouble()), 2);
        return value <= lo || value >= hi ? (lo + hi) / 2 : value;
    }

    private static string String(JsonElement schema, DeterministicRandom rng, IReadOnlyList<string> words, string? propertyName)
    {
        var minLength = GetInt(schema, "minLength") ?? 0;
        var maxLength = GetInt(schema, "maxLength");
        var format = schema.TryGetProperty("format", out var f) ? f.GetString() : null;
        var text = format switch
        {
            "date-time" => new DateTime(2025, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddMinutes(rng.Next(525_600)).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            "date" => new DateTime(2025, 1, 1).AddDays(rng.Next(365)).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            "time" => $"{rng.Next(24):00}:{rng.Next(60):00}:00",
            "email" => $"{Ascii(Word(rng, words))}@example.com",
            "uri" or "url" => $"https://example.com/{Ascii(Word(rng, words))}",
            "uuid" => new Guid(rng.NextBytes(16)).ToString(),
            _ => Phrase(rng, words, propertyName),
        };
        while (text.Length < minLength)
            text += " " + Word(rng, words);
        if (maxLength is { } max && text.Length > max)
            text = text[..max].TrimEnd() is { Length: >= 1 } t && t.Length >= minLength ? t : text[..max];
        return text;
    }

    private static string Phrase(DeterministicRandom rng, IReadOnlyList<string> words, string? propertyName)
    {
        // Names and ids read better as one word; free text as a few.
        var n = propertyName is not null && (propertyName.Contains("name", StringComparison.OrdinalIgnoreCase)
            || propertyName.Contains("id", StringComparison.OrdinalIgnoreCase) || propertyName.Contains("city", StringComparison.OrdinalIgnoreCase))
            ? 1 : 1 + rng.Next(3);
        var parts = new string[n];
        for (var i = 0; i < n; i++)
            parts[i] = Word(rng, words);
        var phrase = string.Join(' ', parts);
        return n == 1 && phrase.Length > 0 ? char.ToUpperInvariant(phrase[0]) + phrase[1..] : phrase;
    }

    private static string Word(DeterministicRandom rng, IReadOnlyList<string> words) =>
        words.Count > 0 && rng.Next(4) != 0 ? words[rng.Next(words.Count)] : FillerWords[rng.Next(FillerWords.Length)];

    private static string Ascii(string word)
    {
        var ascii = new string([.. word.ToLowerInvariant().Where(char.IsAsciiLetterOrDigit)]);
        return ascii.Length > 0 ? ascii : "user";
    }

    private static JsonElement? Resolve(JsonElement root, string? pointer)
    {
        if (pointer is null || !pointer.StartsWith("#", StringComparison.Ordinal))
            return null;
        var current = root;
        foreach (var segment in pointer[1..].Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            var name = segment.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
            if (current.ValueKind != JsonValueKind.Object || !current.TryGetProperty(name, out current))
                return null;
        }
        return current;
    }

    private static int? GetInt(JsonElement schema, string name) =>
        schema.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out var d) ? (int)Math.Clamp(d, 0, 10_000) : null;

    private static double? GetDouble(JsonElement schema, string name) =>
        schema.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
}

/// <summary>SplitMix64: tiny, fast and identical on every machine, which System.Random's seeded output does not promise.</summary>
public sealed class DeterministicRandom(ulong seed)
{
    private ulong _state = seed;

    public ulong NextULong()
    {
        var z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public int Next(int maxExclusive) => maxExclusive <= 1 ? 0 : (int)(NextULong() % (ulong)maxExclusive);

    public double NextDouble() => (NextULong() >> 11) * (1.0 / (1UL << 53));

    public byte[] NextBytes(int count)
    {
        var bytes = new byte[count];
        for (var i = 0; i < count; i++)
            bytes[i] = (byte)NextULong();
        return bytes;
    }
}
