using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using AgentLab.Backend.Data;

namespace AgentLab.Backend.Events;

/// <summary>
/// One event of an execution's ordered log, as stored in <c>execution_events</c>, published on Redis and sent to
/// stream subscribers (ARCHITECTURE.md, "Events"): <c>{execution_id, seq, type, node?, data, ts}</c>. <c>seq</c> is
/// gap-free per execution, from 1. A <c>token</c> event carries a chunk, <c>{"text": ..., "tokens": n}</c>; one that
/// retention compacted also has <c>through_seq</c>, the last seq it covers.
/// </summary>
public sealed record ExecutionEvent(Guid ExecutionId, long Seq, string Type, string? Node, JsonElement Data, DateTimeOffset Ts)
{
    /// <summary>The last seq this event covers: its own, or a compacted token run's <c>through_seq</c>.</summary>
    [JsonIgnore]
    public long LastSeq => Type == EventTypes.Token && Data.ValueKind == JsonValueKind.Object
        && Data.TryGetProperty("through_seq", out var through) && through.TryGetInt64(out var last) && last > Seq ? last : Seq;

    /// <summary>True for the event that ends the log (<c>execution_completed</c>, <c>_failed</c>, <c>_cancelled</c>).</summary>
    [JsonIgnore]
    public bool IsTerminal => EventTypes.IsTerminal(Type);
}

/// <summary>The one wire form of <see cref="ExecutionEvent"/>, for Redis and for the streams alike.</summary>
public static class ExecutionEventJson
{
    private static readonly ExecutionEventJsonContext Context = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    public static byte[] ToUtf8(ExecutionEvent e) => JsonSerializer.SerializeToUtf8Bytes(e, Context.ExecutionEvent);

    /// <summary>Reads one event; null when the bytes are not an event (a foreign message on the channel).</summary>
    public static ExecutionEvent? Parse(ReadOnlySpan<byte> utf8)
    {
        try
        {
            var e = JsonSerializer.Deserialize(utf8, Context.ExecutionEvent);
            return e is { Seq: > 0, Type.Length: > 0 } ? e : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ExecutionEvent))]
internal sealed partial class ExecutionEventJsonContext : JsonSerializerContext;
