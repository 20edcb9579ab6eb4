using AgentLab.LabService.Models;
using AgentLab.LabService.Ollama;
using AgentLab.LabService.Orchestration;
using AgentLab.LabService.Orchestration.LabGraph;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace AgentLab.LabService;

public static class Extensions
{
    /// <summary>Options, the Ollama client, the model manager, error mapping and the model-server health check.</summary>
    public static IHostApplicationBuilder AddLabServices(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<OllamaOptions>().BindConfiguration(OllamaOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<LabOptions>().BindConfiguration(LabOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);

        // No resilience handler on purpose: a generation is not idempotent, and once a byte has arrived a retry
        // would duplicate it. Phase timeouts are enforced per call by OllamaClient instead of HttpClient.Timeout.
        services.AddHttpClient<OllamaClient>((sp, http) =>
            {
                http.BaseAddress = OllamaOptions.ResolveEndpoint(sp.GetRequiredService<IConfiguration>());
                http.Timeout = Timeout.InfiniteTimeSpan;
            })
            .ConfigurePrimaryHttpMessageHandler(sp => new SocketsHttpHandler
            {
                ConnectTimeout = TimeSpan.FromSeconds(sp.GetRequiredService<IOptions<OllamaOptions>>().Value.ConnectTimeoutSeconds),
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
                AutomaticDecompression = System.Net.DecompressionMethods.None,
                UseProxy = false,
            });
        services.AddTransient<IChatClient>(sp => sp.GetRequiredService<OllamaClient>());
        services.AddSingleton<ModelManager>();
        services.AddOptions<OrchestrationOptions>().BindConfiguration(OrchestrationOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton(_ => new PromptLibrary(PromptLibrary.DefaultDirectory));
        services.AddSingleton<LabGraphFactory>();
        services.TryAddSingleton<ILabToolProvider, NoLabTools>();   // the tools feature registers the real ones

        services.AddExceptionHandler<LabExceptionHandler>();
        services.AddHealthChecks().AddCheck<ModelServerHealthCheck>(ModelServerHealthCheck.Name, HealthStatus.Degraded);

        if (builder is WebApplicationBuilder web)
            web.ListenByDefaultOn(DefaultUrl);
        return builder;
    }

    /// <summary>Where LabService listens when nothing else is configured.</summary>
    public const string DefaultUrl = "http://localhost:8001";
}
