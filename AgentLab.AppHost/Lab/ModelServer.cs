using AgentLab.AppHost.Hosting;
using Microsoft.Extensions.Configuration;

namespace AgentLab.AppHost.Lab;

/// <summary>
/// The model server, in ARCHITECTURE.md's order: the configured endpoint (<c>ConnectionStrings:ollama</c>); else
/// Ollama on localhost:11434 if it answers; else our Ollama-protocol simulator, announced loudly as such.
/// Stand-in until the infrastructure recipes bring their own model-server recipe.
/// </summary>
public static class ModelServer
{
    private static readonly Uri LocalOllama = new("http://localhost:11434");

    public static async Task<IResourceBuilder<LabResource>> AddModelServerAsync(this LabAppBuilder builder, string name,
        CancellationToken ct = default)
    {
        if (builder.Configuration.GetConnectionString(name) is { Length: > 0 } configured)
        {
            builder.Output.WriteLine($"[apphost] {name}: using the configured model server (ConnectionStrings:{name}).");
            return builder.AddConnectionString(name, configured);
        }
        if (await AnswersAsync(LocalOllama, ct).ConfigureAwait(false))
        {
            builder.Output.WriteLine($"[apphost] {name}: using the Ollama that answers on {LocalOllama.Authority}.");
            return builder.AddConnectionString(name, $"Endpoint={LocalOllama.GetLeftPart(UriPartial.Authority)}");
        }
        builder.Output.WriteLine($"""
            [apphost] {name}: no ConnectionStrings:{name} and no Ollama on {LocalOllama.Authority}: starting the SIMULATOR.
            [apphost]   Results come from AgentLab.ModelSimulator (deterministic text), not from a real model.
            [apphost]   For a real model: run Ollama, or give --ConnectionStrings:{name}=Endpoint=http://host:11434
            """);
        return builder.AddProject(name, "AgentLab.ModelSimulator")
            .WithHttpEndpoint()
            .WithHttpHealthCheck("/api/version")
            .WithConnectionString(endpoint => $"Endpoint={endpoint.GetLeftPart(UriPartial.Authority)}");
    }

    private static async Task<bool> AnswersAsync(Uri server, CancellationToken ct)
    {
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(1) };
        try
        {
            using var response = await http.GetAsync(new Uri(server, "/api/version"), ct).ConfigureAwait(false);
            return response.IsSuccessStatusCode;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }
}
