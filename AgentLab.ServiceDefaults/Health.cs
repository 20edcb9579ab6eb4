using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace AgentLab.ServiceDefaults;

/// <summary>Health checks and the <c>/health</c> and <c>/alive</c> endpoints.</summary>
public static class HealthEndpoints
{
    /// <summary>Path of the readiness endpoint (every check).</summary>
    public const string HealthPath = "/health";

    /// <summary>Path of the liveness endpoint (checks tagged <see cref="LiveTag"/>).</summary>
    public const string AlivePath = "/alive";

    /// <summary>Tag of the checks that say the process is alive (restart it when they fail).</summary>
    public const string LiveTag = "live";

    /// <summary>Tag services may put on checks that say the process can take traffic.</summary>
    public const string ReadyTag = "ready";

    /// <summary>Adds health checks with a <c>self</c> check tagged <c>live</c>; services add their own checks.</summary>
    public static TBuilder AddDefaultHealthChecks<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddHealthChecks().AddCheck("self", () => HealthCheckResult.Healthy(), [LiveTag]);
        return builder;
    }

    /// <summary>Maps <c>/health</c> and <c>/alive</c> with the JSON writer; both are excluded from HTTP metrics.</summary>
    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        // Probes answer without a token (a service that requires one elsewhere still lets its orchestrator look).
        app.MapHealthChecks(HealthPath, new HealthCheckOptions { ResponseWriter = WriteAsync }).DisableHttpMetrics().AllowAnonymous();
        app.MapHealthChecks(AlivePath, new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains(LiveTag),
            ResponseWriter = WriteAsync,
        }).DisableHttpMetrics().AllowAnonymous();
        return app;
    }

    /// <summary>Whether <paramref name="path"/> is one of the probes (<c>/health</c>, <c>/alive</c>), which answer without credentials.</summary>
    public static bool IsProbe(PathString path) =>
        path.Equals(HealthPath, StringComparison.OrdinalIgnoreCase) || path.Equals(AlivePath, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// <c>{"status":"healthy","checks":{"self":{"status","duration_ms","description","data":{}}}}</c>.
    /// Exception messages are left out: they can carry connection strings.
    /// </summary>
    internal static async Task WriteAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        // Built in memory: JsonSerializer flushes synchronously, which Kestrel forbids on the response stream.
        var buffer = new ArrayBufferWriter<byte>(512);
        using var json = new Utf8JsonWriter(buffer);
        json.WriteStartObject();
        json.WriteString("status", Name(report.Status));
        json.WriteNumber("duration_ms", Math.Round(report.TotalDuration.TotalMilliseconds, 3));
        json.WriteStartObject("checks");
        foreach (var (name, entry) in report.Entries)
        {
            json.WriteStartObject(name);
            json.WriteString("status", Name(entry.Status));
            json.WriteNumber("duration_ms", Math.Round(entry.Duration.TotalMilliseconds, 3));
            json.WriteString("description", entry.Description);
            json.WriteStartObject("data");
            foreach (var (key, value) in entry.Data)
            {
                json.WritePropertyName(key);
                JsonSerializer.Serialize(json, value, value?.GetType() ?? typeof(object));
            }
            json.WriteEndObject();
            json.WriteEndObject();
        }
        json.WriteEndObject();
        json.WriteEndObject();
        json.Flush();
        await context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted);
    }

    private static string Name(HealthStatus status) => status switch
    {
        HealthStatus.Healthy => "healthy",
        HealthStatus.Degraded => "degraded",
        _ => "unhealthy",
    };
}
