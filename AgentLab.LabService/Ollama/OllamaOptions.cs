using System.ComponentModel.DataAnnotations;

namespace AgentLab.LabService.Ollama;

/// <summary>How LabService reaches the model server and how long it waits in each phase of a call.</summary>
public sealed class OllamaOptions
{
    public const string Section = "Ollama";

    /// <summary>Used when <c>ConnectionStrings:ollama</c> is not set.</summary>
    public string? Endpoint { get; set; }

    // Seconds are doubles so tests can use sub-second limits; production values are whole seconds.
    [Range(0.01, 300)] public double ConnectTimeoutSeconds { get; set; } = 5;
    [Range(0.01, 3600)] public double FirstTokenTimeoutSeconds { get; set; } = 300;
    [Range(0.01, 3600)] public double IdleTimeoutSeconds { get; set; } = 60;
    [Range(0.01, 86400)] public double TotalTimeoutSeconds { get; set; } = 900;

    /// <summary>Always sent as <c>options.num_ctx</c>: Ollama silently truncates prompts longer than its default.</summary>
    [Range(256, 1_048_576)] public int DefaultNumCtx { get; set; } = 4096;

    /// <summary>Ollama's keep_alive ("10m", "24h", seconds, -1 forever, 0 unload); null leaves the server default.</summary>
    public string? KeepAlive { get; set; }

    public const string DefaultEndpoint = "http://localhost:11434";

    /// <summary>
    /// The model server's base address: <c>ConnectionStrings:ollama</c> (Aspire's <c>Endpoint=http://host:port</c>
    /// or a bare URL), else <c>Ollama:Endpoint</c>, else <see cref="DefaultEndpoint"/>.
    /// </summary>
    public static Uri ResolveEndpoint(IConfiguration configuration)
    {
        var connectionString = configuration.GetConnectionString("ollama");
        var raw = ParseConnectionString(connectionString)
            ?? configuration[$"{Section}:{nameof(Endpoint)}"]
            ?? DefaultEndpoint;
        if (!Uri.TryCreate(raw.Trim(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new InvalidOperationException(
                $"The model server endpoint '{raw}' is not an absolute http(s) URL. Set ConnectionStrings:ollama to " +
                "'Endpoint=http://host:11434' (or a bare URL) or Ollama:Endpoint.");
        }
        // A base address without a trailing slash would drop its last path segment when combined with "api/chat".
        return uri.AbsoluteUri.EndsWith('/') ? uri : new Uri(uri.AbsoluteUri + "/");
    }

    private static string? ParseConnectionString(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
            return null;
        if (!value.Contains('='))
            return value;
        foreach (var part in value.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = part.IndexOf('=');
            if (eq > 0 && part.AsSpan(0, eq).Trim().Equals("Endpoint", StringComparison.OrdinalIgnoreCase))
                return part[(eq + 1)..].Trim();
        }
        throw new InvalidOperationException(
            "ConnectionStrings:ollama has no 'Endpoint=' part. Use 'Endpoint=http://host:11434' or a bare URL.");
    }
}
