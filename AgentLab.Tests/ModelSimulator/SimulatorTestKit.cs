using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using AgentLab.ModelSimulator;

namespace AgentLab.Tests.ModelSimulator;

/// <summary>Shared helpers: a fast simulator, posting JSON, reading NDJSON, and a small JSON Schema checker.</summary>
internal static class SimulatorTestKit
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);

    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>No waiting anywhere, so tests are quick; tests about timing set their own values.</summary>
    public static SimulatorOptions Fast() =>
        new() { TokenLatencyMs = 0, TimeToFirstTokenMs = 0, LoadDurationMs = 0, PullStepDelayMs = 0 };

    public static async Task<(SimulatorHost Host, HttpClient Http)> StartAsync(SimulatorOptions? options = null)
    {
        var host = await SimulatorHost.StartAsync(options ?? Fast(), Ct).WaitAsync(Bound, Ct);
        return (host, new HttpClient { BaseAddress = host.BaseAddress, Timeout = System.Threading.Timeout.InfiniteTimeSpan });
    }

    public static async Task<HttpResponseMessage> PostAsync(this HttpClient http, string path, string json,
        string? fault = null, IEnumerable<(string, string)>? headers = null) =>
        await http.PostAsync(path, json, Ct, fault, headers);

    public static async Task<HttpResponseMessage> PostAsync(this HttpClient http, string path, string json, CancellationToken ct,
        string? fault = null, IEnumerable<(string, string)>? headers = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (fault is not null)
            request.Headers.Add(Fault.HeaderName, fault);
        foreach (var (name, value) in headers ?? [])
            request.Headers.Add(name, value);
        return await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).WaitAsync(Bound, Ct);
    }

    public static async Task<JsonElement> JsonAsync(this HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync(Ct).WaitAsync(Bound, Ct);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>Every NDJSON line of the body, checking each is one compact object ending in \n.</summary>
    public static async Task<List<JsonElement>> LinesAsync(this HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync(Ct).WaitAsync(Bound, Ct);
        Assert.EndsWith("\n", body);
        return [.. body[..^1].Split('\n').Select(line => JsonDocument.Parse(line).RootElement.Clone())];
    }

    public static string ChatBody(string model, string content, string extra = "") =>
        $$"""{"model":"{{model}}","messages":[{"role":"user","content":{{JsonSerializer.Serialize(content)}}}]{{extra}}}""";

    public static string Content(IEnumerable<JsonElement> lines) =>
        string.Concat(lines.Where(l => l.TryGetProperty("message", out _)).Select(l => l.GetProperty("message").GetProperty("content").GetString()));

    public static MediaTypeHeaderValue? ContentType(this HttpResponseMessage response) => response.Content.Headers.ContentType;

    /// <summary>Checks a value against the schema subset the simulator promises; returns the first violation.</summary>
    public static string? Violation(JsonElement value, JsonElement schema, string path = "$")
    {
        if (schema.TryGetProperty("enum", out var options))
            return options.EnumerateArray().Any(o => o.GetRawText() == value.GetRawText()) ? null : $"{path}: not in enum";
        var type = schema.TryGetProperty("type", out var t) ? t.GetString() : null;
        switch (type)
        {
            case "object":
                if (value.ValueKind != JsonValueKind.Object) return $"{path}: not an object";
                if (schema.TryGetProperty("required", out var r))
                    foreach (var required in r.EnumerateArray())
                        if (!value.TryGetProperty(required.GetString()!, out _)) return $"{path}: missing {required}";
                if (schema.TryGetProperty("properties", out var props))
                    foreach (var p in props.EnumerateObject())
                        if (value.TryGetProperty(p.Name, out var v) && Violation(v, p.Value, $"{path}.{p.Name}") is { } e) return e;
                return null;
            case "array":
                if (value.ValueKind != JsonValueKind.Array) return $"{path}: not an array";
                if (schema.TryGetProperty("minItems", out var min) && value.GetArrayLength() < min.GetInt32()) return $"{path}: too few items";
                if (schema.TryGetProperty("maxItems", out var max) && value.GetArrayLength() > max.GetInt32()) return $"{path}: too many items";
                var i = 0;
                foreach (var item in value.EnumerateArray())
                    if (schema.TryGetProperty("items", out var items) && Violation(item, items, $"{path}[{i++}]") is { } e) return e;
                return null;
            case "string":
                if (value.ValueKind != JsonValueKind.String) return $"{path}: not a string";
                if (schema.TryGetProperty("minLength", out var minLength) && value.GetString()!.Length < minLength.GetInt32()) return $"{path}: too short";
                if (schema.TryGetProperty("maxLength", out var maxLength) && value.GetString()!.Length > maxLength.GetInt32()) return $"{path}: too long";
                return null;
            case "integer" or "number":
                if (value.ValueKind != JsonValueKind.Number) return $"{path}: not a number";
                if (type == "integer" && !value.TryGetInt64(out _)) return $"{path}: not an integer";
                if (schema.TryGetProperty("minimum", out var lo) && value.GetDouble() < lo.GetDouble()) return $"{path}: below minimum";
                if (schema.TryGetProperty("maximum", out var hi) && value.GetDouble() > hi.GetDouble()) return $"{path}: above maximum";
                return null;
            case "boolean":
                return value.ValueKind is JsonValueKind.True or JsonValueKind.False ? null : $"{path}: not a boolean";
            case "null":
                return value.ValueKind == JsonValueKind.Null ? null : $"{path}: not null";
            default:
                return null;
        }
    }
}
