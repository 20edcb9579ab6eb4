using System.Net.Http.Json;
using System.Text.Json;

namespace AgentLab.AppHost.Infrastructure;

/// <summary>Which model server the lab uses.</summary>
public enum ModelServerKind
{
    /// <summary>A server the AppHost does not start: the configured endpoint or an Ollama already running.</summary>
    External,

    /// <summary>The AppHost starts AgentLab.ModelSimulator: no real model answers.</summary>
    Simulator,
}

/// <summary>The selector's decision, with the reason to print.</summary>
/// <param name="Endpoint">The external server's base address; null for <see cref="ModelServerKind.Simulator"/>, whose port the AppHost picks.</param>
public sealed record ModelServerChoice(ModelServerKind Kind, Uri? Endpoint, string Reason)
{
    public bool IsSimulator => Kind == ModelServerKind.Simulator;

    /// <summary>Aspire's form for <c>ConnectionStrings__ollama</c>: <c>Endpoint=http://host:port</c>.</summary>
    public static string ConnectionStringFor(Uri endpoint) => $"Endpoint={endpoint.AbsoluteUri.TrimEnd('/')}";
}

/// <summary>
/// Decides the model server, in the order ARCHITECTURE.md gives: the configured <c>ConnectionStrings:ollama</c>;
/// else an Ollama answering on localhost:11434; else the simulator. A simulator already listening on the probed
/// port (it says so in <c>X-Model-Server</c>) is not taken for Ollama: the AppHost then starts its own.
/// </summary>
public static class ModelServerSelector
{
    public static readonly Uri DefaultProbeAddress = new("http://localhost:11434/");

    private const string ServerHeader = "X-Model-Server";
    private const string SimulatorHeaderValue = "agentlab-simulator";

    /// <param name="configuredConnectionString">The value of <c>ConnectionStrings:ollama</c> (<c>Endpoint=...</c> or a bare URL), or null.</param>
    /// <param name="probeAddress">Where to look for a running Ollama; <see cref="DefaultProbeAddress"/> when null.</param>
    /// <param name="timeout">The whole probe's bound; about a second keeps the AppHost's start quick when nothing listens.</param>
    public static async Task<ModelServerChoice> SelectAsync(string? configuredConnectionString, Uri? probeAddress = null,
        TimeSpan? timeout = null, CancellationToken ct = default)
    {
        if (!string.IsNullOrWhiteSpace(configuredConnectionString))
        {
            var endpoint = ParseEndpoint(configuredConnectionString);
            return new(ModelServerKind.External, endpoint, $"ConnectionStrings:ollama is set: using {endpoint}.");
        }

        var address = probeAddress ?? DefaultProbeAddress;
        var verdict = await ProbeAsync(address, timeout ?? TimeSpan.FromSeconds(1), ct);
        return verdict is null
            ? new(ModelServerKind.External, address, $"Ollama answers at {address}: using it.")
            : new(ModelServerKind.Simulator, null,
                $"SIMULATOR: no Ollama at {address} ({verdict}). Starting the AgentLab model simulator: outputs are " +
                "deterministic stand-in text, not a model's. Install Ollama (https://ollama.com) or set " +
                "ConnectionStrings:ollama to use real models.");
    }

    /// <summary>Reads <c>Endpoint=http://host:port</c> or a bare URL; throws <see cref="InfrastructureException"/> otherwise.</summary>
    public static Uri ParseEndpoint(string connectionString)
    {
        var raw = connectionString.Trim();
        if (raw.Contains('='))
        {
            raw = raw.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Where(part => part.StartsWith("Endpoint=", StringComparison.OrdinalIgnoreCase))
                .Select(part => part["Endpoint=".Length..].Trim())
                .FirstOrDefault() ?? "";
        }
        if (Uri.TryCreate(raw, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps))
            return uri.AbsoluteUri.EndsWith('/') ? uri : new Uri(uri.AbsoluteUri + "/");
        throw new InfrastructureException(
            $"ConnectionStrings:ollama is '{connectionString}', which names no http(s) endpoint. Use " +
            "'Endpoint=http://host:11434' or a bare URL, or remove it to use a local Ollama or the simulator.");
    }

    /// <summary>Null when a real Ollama answers at <paramref name="address"/>; else why not, for the announcement.</summary>
    private static async Task<string?> ProbeAsync(Uri address, TimeSpan timeout, CancellationToken ct)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(timeout);
        using var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        try
        {
            using var root = await http.GetAsync(address, limit.Token);
            if (IsSimulator(root))
                return "the AgentLab simulator answers there, not Ollama";
            using var version = await http.GetAsync(new Uri(address, "api/version"), limit.Token);
            if (IsSimulator(version))
                return "the AgentLab simulator answers there, not Ollama";
            if (!root.IsSuccessStatusCode || !version.IsSuccessStatusCode)
                return $"something answers there, but not like Ollama: GET / gave {(int)root.StatusCode}, /api/version gave {(int)version.StatusCode}";
            var body = await version.Content.ReadFromJsonAsync<JsonElement>(limit.Token);
            return body.ValueKind == JsonValueKind.Object && body.TryGetProperty("version", out var v) && v.ValueKind == JsonValueKind.String
                ? null
                : "something answers there, but /api/version has no version";
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return $"no answer within {timeout.TotalSeconds:0.#} s";
        }
        catch (HttpRequestException e)
        {
            return e.HttpRequestError == HttpRequestError.ConnectionError ? "nothing listens there" : $"it failed: {e.Message}";
        }
        catch (JsonException)
        {
            return "something answers there, but /api/version is not JSON";
        }
    }

    private static bool IsSimulator(HttpResponseMessage response) =>
        response.Headers.TryGetValues(ServerHeader, out var values) && values.Contains(SimulatorHeaderValue, StringComparer.OrdinalIgnoreCase);
}
