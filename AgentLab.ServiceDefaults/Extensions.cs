using System.Text.Json;
using System.Text.Json.Serialization;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// The defaults every AgentLab service shares: telemetry, health, ProblemDetails, service discovery, resilience and
/// execution-ID propagation. Shaped like the Aspire ServiceDefaults template.
/// </summary>
/// <remarks>
/// A service's Program.cs needs exactly two calls: <c>builder.AddServiceDefaults()</c> and
/// <c>app.MapDefaultEndpoints()</c>. The request pipeline pieces (server-span enrichment, the execution-ID log scope,
/// <c>UseExceptionHandler()</c> and <c>UseStatusCodePages()</c> writing ProblemDetails) are added at the front of the
/// pipeline by an <see cref="IStartupFilter"/>, so they wrap everything the service adds. Calling
/// <c>app.UseExceptionHandler()</c> in the service as well is harmless (the inner one handles first).
/// </remarks>
public static class Extensions
{
    /// <summary>
    /// Adds OpenTelemetry (traces always in process; OTLP export, metrics and logs when
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is configured), health checks (a <c>self</c> check tagged <c>live</c>),
    /// snake_case HTTP JSON, ProblemDetails with <c>code</c>, <c>trace_id</c> and <c>execution_id</c>,
    /// configuration-based service discovery on every HttpClient, and the error-handling middleware. Logs go to the
    /// console through <see cref="SafeConsoleFormatter"/> (control characters escaped), and secret query values
    /// (<c>ticket</c>, <c>access_token</c>, <c>token</c>) are redacted from every log and span.
    /// </summary>
    /// <remarks>
    /// Call it first, before anything else touches the host: it sets the AppContext switch
    /// <c>Microsoft.AspNetCore.Hosting.SuppressActivityOpenTelemetryData</c> to <see langword="false"/>, which
    /// ASP.NET Core reads when the host starts, so server spans carry the OpenTelemetry HTTP attributes.
    /// </remarks>
    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        // ASP.NET Core 10 leaves server spans bare unless told otherwise; the switch is read at host start.
        AppContext.SetSwitch(Telemetry.SuppressActivityOpenTelemetryDataSwitch, false);

        builder.ConfigureOpenTelemetry();
        // Console records that user text (CR/LF, ANSI escapes) cannot split or recolour.
        builder.Logging.AddSafeConsoleFormatter();
        builder.AddDefaultHealthChecks();

        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            // The wire contract (inherited from the Python prototype) is snake_case everywhere.
            o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            o.SerializerOptions.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower));
            // Non-ASCII text (prompts, model messages in problems) stays readable UTF-8; responses are never HTML.
            o.SerializerOptions.Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping;
        });
        builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = Problems.Customize);
        // Kestrel's body-size and malformed-request errors are the client's fault: 400/413, not 500.
        builder.Services.Configure<ExceptionHandlerOptions>(o =>
            o.StatusCodeSelector ??= ex => ex is BadHttpRequestException bad ? bad.StatusCode : StatusCodes.Status500InternalServerError);

        builder.Services.AddServiceDiscoveryCore();
        builder.Services.ConfigureHttpClientDefaults(http => http.AddServiceDiscovery());

        builder.Services.TryAddEnumerable(ServiceDescriptor.Transient<IStartupFilter, ServiceDefaultsStartupFilter>());
        return builder;
    }

    /// <summary>
    /// Listens on <paramref name="url"/> unless the host was given addresses (<c>--urls</c>, <c>ASPNETCORE_URLS</c>,
    /// <c>ASPNETCORE_HTTP_PORTS</c> or <c>Kestrel:Endpoints</c>), so <c>dotnet run --project</c> lands on the service's
    /// well-known port while an orchestrator or a test host can still choose another.
    /// </summary>
    /// <remarks>
    /// Done in code rather than as <c>Urls</c>/<c>Kestrel:Endpoints</c> in appsettings.json: a Kestrel endpoint there
    /// beats <c>--urls</c>, and appsettings.json is copied into every referencing project's output folder (the tests'),
    /// where it would make unrelated hosts bind the service's port.
    /// </remarks>
    public static WebApplicationBuilder ListenByDefaultOn(this WebApplicationBuilder builder, string url)
    {
        var config = builder.Configuration;
        var hasAddresses = !string.IsNullOrEmpty(config["urls"])
            || !string.IsNullOrEmpty(config["http_ports"])
            || !string.IsNullOrEmpty(config["https_ports"])
            || config.GetSection("Kestrel:Endpoints").Exists();
        if (!hasAddresses)
            builder.WebHost.UseUrls(url);
        return builder;
    }

    /// <summary>
    /// Maps <c>/health</c> (every check: readiness) and <c>/alive</c> (only checks tagged <c>live</c>: liveness).
    /// Both answer JSON <c>{"status":"healthy|degraded|unhealthy","checks":{...}}</c>, 200 when healthy or
    /// degraded and 503 when unhealthy. Their spans are kept out of the exported traces.
    /// </summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        app.MapHealthEndpoints();
        return app;
    }
}
