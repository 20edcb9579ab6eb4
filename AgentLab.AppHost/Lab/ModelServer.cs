using AgentLab.AppHost.Hosting;
using AgentLab.AppHost.Infrastructure;
using Microsoft.Extensions.Configuration;

namespace AgentLab.AppHost.Lab;

/// <summary>The model server: the configured one, else an Ollama that answers locally, else the simulator, said loudly.</summary>
public static class ModelServer
{
    public static async Task<IResourceBuilder<LabResource>> AddModelServerAsync(this LabAppBuilder builder, string name,
        CancellationToken ct = default)
    {
        // AppHost:UseSimulator=true skips the search (tests must not pick up a developer's own Ollama).
        var choice = builder.Configuration.GetValue<bool>("AppHost:UseSimulator")
            ? new ModelServerChoice(ModelServerKind.Simulator, null, "SIMULATOR: asked for by AppHost:UseSimulator.")
            : await ModelServerSelector.SelectAsync(builder.Configuration.GetConnectionString(name), ct: ct).ConfigureAwait(false);
        if (!choice.IsSimulator)
        {
            builder.Output.WriteLine($"[apphost] {name}: {choice.Reason}");
            return builder.AddConnectionString(name, ModelServerChoice.ConnectionStringFor(choice.Endpoint!));
        }

        builder.Output.WriteLine($"""
            [apphost] {name}: {choice.Reason}
            [apphost]   Results come from AgentLab.ModelSimulator (deterministic text), not from a real model.
            [apphost]   For a real model: run Ollama, or give --ConnectionStrings:{name}=Endpoint=http://host:11434
            """);
        return builder.AddProject(name, "AgentLab.ModelSimulator")
            .WithHttpEndpoint()
            .WithHttpHealthCheck("/api/version")
            .WithConnectionString(endpoint => $"Endpoint={endpoint.GetLeftPart(UriPartial.Authority)}");
    }
}
