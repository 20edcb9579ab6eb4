using AgentLab.LabService.Models;
using AgentLab.LabService.Ollama;
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

        services.AddProblemDetails();
        services.AddExceptionHandler<LabExceptionHandler>();
        services.AddHealthChecks().AddCheck<ModelServerHealthCheck>(ModelServerHealthCheck.Name, HealthStatus.Degraded);

        if (builder is WebApplicationBuilder web)
            UseDefaultUrls(web);
        return builder;
    }

    /// <summary>
    /// appsettings.json sets <c>Urls</c> to http://0.0.0.0:8001. <c>--urls</c> and <c>ASPNETCORE_URLS</c> override it as
    /// usual; <c>PORT</c> (as set by many PaaS hosts) overrides only that default, never an explicit URL.
    /// </summary>
    private static void UseDefaultUrls(WebApplicationBuilder builder)
    {
        var config = builder.Configuration;
        if (config["urls"] == DefaultUrls && int.TryParse(config["PORT"], out var port) && port is > 0 and < 65536)
            config.AddInMemoryCollection([new("urls", $"http://0.0.0.0:{port}")]);
    }

    public const string DefaultUrls = "http://0.0.0.0:8001";
}
