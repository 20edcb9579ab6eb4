using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// The defaults every AgentLab service shares: telemetry, health, service discovery, resilience and
/// execution-ID propagation. Shaped like the Aspire ServiceDefaults template.
/// </summary>
public static class Extensions
{
    /// <summary>Adds OpenTelemetry, health checks, service discovery and the HttpClient defaults.</summary>
    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        // STUB: filled in by the ServiceDefaults work.
        builder.Services.AddHealthChecks();
        return builder;
    }

    /// <summary>Maps <c>/health</c> (ready) and <c>/alive</c> (live).</summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        app.MapHealthChecks("/health");
        return app;
    }
}
