using AgentLab.Backend.Data;
using AgentLab.Backend.Data.Retention;
using AgentLab.Backend.Errors;
using AgentLab.Backend.Events;
using AgentLab.Backend.Executions;
using AgentLab.Backend.Lab;
using AgentLab.Backend.Security;
using AgentLab.Backend.Security.RateLimiting;
using AgentLab.Backend.Streams;
using AgentLab.ServiceDefaults;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend;

/// <summary>The Backend's services, options and API documentation, wired once for <c>Program.cs</c>.</summary>
public static class BackendExtensions
{
    /// <summary>The CORS policy applied to the whole API.</summary>
    public const string CorsPolicy = "frontend";

    /// <summary>Where the Backend listens when nothing else is configured (the prototype's port).</summary>
    public const string DefaultUrl = "http://localhost:8000";

    public static WebApplicationBuilder AddBackendServices(this WebApplicationBuilder builder)
    {
        var services = builder.Services;

        builder.ListenByDefaultOn(DefaultUrl);

        services.AddOptions<ExecutionOptions>().BindConfiguration(ExecutionOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<LabServiceOptions>().BindConfiguration(LabServiceOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<BackendCorsOptions>().BindConfiguration(BackendCorsOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<OrchestratorOptions>().BindConfiguration(OrchestratorOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<History.HistoryOptions>().BindConfiguration(History.HistoryOptions.Section).ValidateDataAnnotations().ValidateOnStart();

        services.TryAddSingleton(TimeProvider.System);
        services.AddExceptionHandler<BackendExceptionHandler>();
        services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.TypeInfoResolverChain.Insert(0, BackendJsonContext.Default);
            // The execute body is read strictly ("0.5" is not a number), so the OpenAPI schemas must not say otherwise.
            o.SerializerOptions.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict;
        });

        services.AddAgentLabDatabase();
        services.AddRetention();                // deletes old finished executions, compacts their events
        services.AddExecutionEvents();          // Redis pub/sub and the stored event log: Events/
        services.AddExecutionEventWriting();    // run journals (store, then publish), cancel delivery: Events/
        services.AddExecutionStreams();         // WebSocket/SSE streams and the per-replica hub: Streams/
        services.AddLabServiceClient();
        services.AddLabServiceReadClient();
        services.AddScoped<ExecutionRunner>();
        services.AddScoped<OrchestratorRunner>();
        services.AddSingleton<ReplicaIdentity>();
        services.AddSingleton<ExecutionQueue>();
        services.AddSingleton<HeldExecutions>();
        services.AddHostedService<ExecutionWorker>();
        services.AddSingleton<ExecutionRecovery>();
        services.AddHostedService(sp => sp.GetRequiredService<ExecutionRecovery>());
        services.AddScoped<History.HistoryQuery>();
        services.AddScoped<Metrics.MetricsQuery>();
        services.AddScoped<Graphs.GraphStore>();

        services.AddAgentLabAuth();             // JWT bearer on everything but health and readiness: Security/
        services.AddAgentLabRateLimits();       // request limits (Redis, across replicas) and trusted proxies: Security/RateLimiting/
        services.AddRequestBodyLimit();         // Kestrel's MaxRequestBodySize = Execution:MaxRequestBodyBytes
        services.AddSingleton<Models.ModelContextLimits>();   // prompt vs. the model's context window (422 prompt_too_long)
        services.AddStreamTickets();            // single-use ?ticket= on the two stream endpoints: Streams/StreamTicket*

        services.AddCors();
        services.AddOptions<Microsoft.AspNetCore.Cors.Infrastructure.CorsOptions>()
            .Configure<IOptions<BackendCorsOptions>>((cors, settings) => cors.AddPolicy(CorsPolicy, policy => policy
                .WithOrigins(settings.Value.EffectiveOrigins)
                .AllowAnyHeader()
                .AllowAnyMethod()
                .WithExposedHeaders("Location", "Retry-After")));

        services.AddOpenApi(o => o.AddBearerSecurity());
        return builder;
    }

    /// <summary>The model-call client: no retry handler, ever (a generation is not idempotent).</summary>
    public static IHttpClientBuilder AddLabServiceClient(this IServiceCollection services) =>
        services.AddHttpClient<LabServiceClient>(ConfigureLabClient).ConfigurePrimaryHttpMessageHandler(CreateHandler)
            .AddHttpMessageHandler(sp => new ServiceCredentialHandler(sp.GetRequiredService<IOptions<LabServiceOptions>>()))
            .RemoveAllLoggers();   // the hot path: the runner logs one line per execution, not four per call

    /// <summary>
    /// The client for LabService's read-only endpoints: its GETs are safe to retry, so they go through
    /// ServiceDefaults' idempotent resilience pipeline.
    /// </summary>
    public static IHttpClientBuilder AddLabServiceReadClient(this IServiceCollection services) =>
        services.AddHttpClient<LabServiceReadClient>(ConfigureLabClient).ConfigurePrimaryHttpMessageHandler(CreateHandler)
            .AddHttpMessageHandler(sp => new ServiceCredentialHandler(sp.GetRequiredService<IOptions<LabServiceOptions>>()))
            .RemoveAllLoggers()
            // LabService's Retry-After (5-10 s: the model server is down or busy) is advice for the end client; an
            // interactive read passes that answer on at once instead of sitting on it until its own timeout.
            .AddIdempotentResilienceHandler(o => o.MaxRetryAfter = TimeSpan.FromSeconds(1));

    /// <summary>OpenAPI at <c>/openapi/v1.json</c> and Swagger UI over it at <c>/swagger</c>.</summary>
    public static WebApplication MapApiDocs(this WebApplication app)
    {
        app.MapOpenApi().AllowAnonymous();
        app.UseSwaggerUI(o =>
        {
            o.SwaggerEndpoint("/openapi/v1.json", "AgentLab Backend v1");
            o.DocumentTitle = "AgentLab Backend API";
        });
        return app;
    }

    private static void ConfigureLabClient(IServiceProvider sp, HttpClient http)
    {
        var options = sp.GetRequiredService<IOptions<LabServiceOptions>>().Value;
        http.BaseAddress = new Uri(options.BaseAddress.TrimEnd('/') + "/");
        // Generations can outlast any fixed client timeout; each call is bounded by its own token instead.
        http.Timeout = Timeout.InfiniteTimeSpan;
    }

    private static HttpMessageHandler CreateHandler(IServiceProvider sp) => new SocketsHttpHandler
    {
        // Fail fast when LabService is down rather than waiting for the OS connect timeout (minutes).
        ConnectTimeout = TimeSpan.FromSeconds(sp.GetRequiredService<IOptions<LabServiceOptions>>().Value.ConnectTimeoutSeconds),
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
    };
}
