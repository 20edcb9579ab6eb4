using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace AgentLab.Backend.Lab;

/// <summary>
/// The one send funnel of both LabService clients: transport failures become
/// <see cref="LabServiceUnavailableException"/>, error replies become <see cref="LabServiceProblemException"/>.
/// </summary>
internal static class LabHttp
{
    private static readonly MediaTypeWithQualityHeaderValue AcceptJson = new("application/json");
    private static readonly MediaTypeHeaderValue JsonContentType = new("application/json") { CharSet = "utf-8" };

    // Members of a problem document that are not passed through as extensions: the standard ones are rebuilt, and
    // the Backend adds its own trace_id (the same trace, since the context propagates).
    private static readonly HashSet<string> NotExtensions = new(StringComparer.Ordinal)
    {
        "type", "title", "status", "detail", "instance", "code", "trace_id", "traceId",
    };

    public static HttpRequestMessage Post<T>(string path, T body, JsonTypeInfo<T> typeInfo)
    {
        // Serialized up front so the request carries a Content-Length instead of a chunked body.
        var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(body, typeInfo));
        content.Headers.ContentType = JsonContentType;
        var message = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
        message.Headers.Accept.Add(AcceptJson);
        return message;
    }

    public static HttpRequestMessage Get(string path)
    {
        var message = new HttpRequestMessage(HttpMethod.Get, path);
        message.Headers.Accept.Add(AcceptJson);
        return message;
    }

    /// <summary>Sends and returns a response whose status the caller accepts; throws the typed errors otherwise.</summary>
    public static async Task<HttpResponseMessage> SendAsync(HttpClient http, HttpRequestMessage message,
        Func<HttpResponseMessage, bool> accept, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            throw Unavailable(ex);
        }
        catch (AgentLab.ServiceDefaults.ServiceEndpointNotFoundException ex)
        {
            // http://labservice with no services__labservice__http__0 (the Backend run on its own): a setup gap to
            // report as unavailable with the setting to add, not a 500.
            throw new LabServiceUnavailableException(ex.Message, ex);
        }
        catch (OperationCanceledException ex) when (!ct.IsCancellationRequested)
        {
            // Nobody cancelled us, so this is SocketsHttpHandler's ConnectTimeout.
            throw new LabServiceUnavailableException("the connection attempt timed out", ex);
        }

        if (accept(response))
            return response;

        using (response)
            throw await ReadProblemAsync(response, ct).ConfigureAwait(false);
    }

    /// <summary>Reads a success body; a body that does not match the contract is LabService's fault (502).</summary>
    public static async Task<T> ReadJsonAsync<T>(HttpResponseMessage response, JsonTypeInfo<T> typeInfo, CancellationToken ct)
        where T : class
    {
        try
        {
            await using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            return await JsonSerializer.DeserializeAsync(stream, typeInfo, ct).ConfigureAwait(false)
                ?? throw new JsonException("the body is JSON null");
        }
        catch (HttpRequestException ex)
        {
            throw Unavailable(ex);
        }
        catch (JsonException ex)
        {
            throw ContractViolation((int)response.StatusCode, $"its body does not match the contract ({ex.Message})");
        }
    }

    private static LabServiceUnavailableException Unavailable(HttpRequestException ex) => ex.HttpRequestError switch
    {
        HttpRequestError.NameResolutionError => new("its host name could not be resolved", ex),
        HttpRequestError.ConnectionError => new($"the connection failed ({ex.Message})", ex),
        _ => new($"the connection broke ({ex.Message})", ex),
    };

    private static LabServiceProblemException ContractViolation(int status, string why) =>
        new(StatusCodes.Status502BadGateway, "lab_error", "LabService gave an answer the Backend cannot use",
            $"LabService answered HTTP {status}, but {why}. Check that LabService and the Backend are the same version.",
            new Dictionary<string, JsonElement>(), retryAfter: null);

    private static async Task<LabServiceProblemException> ReadProblemAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var status = (int)response.StatusCode;
        var retryAfter = response.Headers.RetryAfter?.ToString();
        var mediaType = response.Content.Headers.ContentType?.MediaType;
        if (mediaType is not ("application/problem+json" or "application/json"))
            return ContractViolation(status, $"with '{mediaType ?? "no content type"}' instead of a problem document");

        Dictionary<string, JsonElement>? members;
        try
        {
            await using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            members = await JsonSerializer.DeserializeAsync(stream, LabJsonContext.Default.DictionaryStringJsonElement, ct)
                .ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is JsonException or HttpRequestException)
        {
            return ContractViolation(status, "its problem document could not be read");
        }

        if (members is null || !members.TryGetValue("code", out var code) || code.ValueKind != JsonValueKind.String)
            return ContractViolation(status, "its problem document has no 'code'");

        var extensions = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var (key, value) in members)
        {
            if (!NotExtensions.Contains(key))
                extensions[key] = value;
        }

        return new LabServiceProblemException(status, code.GetString()!,
            StringOf(members, "title") ?? $"LabService answered {status}", StringOf(members, "detail"), extensions, retryAfter);
    }

    private static string? StringOf(Dictionary<string, JsonElement> members, string key) =>
        members.TryGetValue(key, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
