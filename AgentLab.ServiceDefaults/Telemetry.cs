using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace AgentLab.ServiceDefaults;

/// <summary>
/// OpenTelemetry without the hosting package: providers built with the SDK and owned by the container.
/// </summary>
public static class Telemetry
{
    /// <summary>The AppContext switch that, when false, makes ASP.NET Core put OTel HTTP attributes on server spans.</summary>
    public const string SuppressActivityOpenTelemetryDataSwitch = "Microsoft.AspNetCore.Hosting.SuppressActivityOpenTelemetryData";

    /// <summary>Configuration key of the OTLP/HTTP endpoint (base address, without <c>/v1/...</c>).</summary>
    public const string OtlpEndpointKey = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>Configuration key of the service name reported in the resource.</summary>
    public const string ServiceNameKey = "OTEL_SERVICE_NAME";

    /// <summary>Every ActivitySource and Meter of ours starts with this prefix.</summary>
    public const string AgentLabPrefix = "AgentLab";

    internal static readonly string[] TraceSources = ["Microsoft.AspNetCore", "System.Net.Http", "Npgsql", AgentLabPrefix + ".*"];

    internal static readonly string[] Meters =
        ["Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel", "System.Net.Http", AgentLabPrefix + ".*"];

    /// <summary>
    /// Adds tracing (always), and metrics, logs and the OTLP/HTTP exporters when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>
    /// is configured.
    /// </summary>
    /// <remarks>
    /// The tracer provider is built even without an exporter: it is the listener that makes ASP.NET Core and
    /// HttpClient create recorded spans, so trace ids reach ProblemDetails and the W3C headers, and so the
    /// <c>agentlab.execution_id</c> tag is stamped on every span for in-process listeners. Metrics and OTel logging
    /// cost per-measurement and per-log work that nobody would read, so they only exist with an exporter.
    /// </remarks>
    public static TBuilder ConfigureOpenTelemetry<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        var serviceName = builder.Configuration[ServiceNameKey] is { Length: > 0 } name ? name : builder.Environment.ApplicationName;
        var endpoint = OtlpBase(builder.Configuration);
        var resource = ResourceBuilder.CreateDefault().AddService(serviceName);
        builder.Services.AddOptions<TelemetryOptions>().BindConfiguration(TelemetryOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        // Every logger, whatever its provider, gets log state with secret query values redacted.
        builder.Services.AddLogRedaction();

        builder.Services.AddSingleton(_ =>
        {
            var tracing = Sdk.CreateTracerProviderBuilder()
                .SetResourceBuilder(resource)
                .AddSource(TraceSources)
                .AddProcessor(new ExecutionIdProcessor())
                // A ticket or token in a query string never reaches a span (url.full, url.query, ...).
                .AddProcessor(new SecretRedactionProcessor())
                // Before the exporter's processor: background polls do not crowd executions out of a bounded window.
                .AddProcessor(new BackgroundStatementFilter());
            if (endpoint is not null)
                tracing.AddOtlpExporter(o => Otlp(o, endpoint, "v1/traces"));
            return tracing.Build();
        });

        if (endpoint is not null)
        {
            builder.Services.AddSingleton(_ => Sdk.CreateMeterProviderBuilder()
                .SetResourceBuilder(resource)
                .AddMeter(Meters)
                .AddOtlpExporter(o => Otlp(o, endpoint, "v1/metrics"))
                .Build());

            builder.Logging.AddOpenTelemetry(o =>
            {
                o.IncludeScopes = true;
                o.IncludeFormattedMessage = true;
                o.ParseStateValues = true;
                o.SetResourceBuilder(resource);
            });
            builder.Services.ConfigureOpenTelemetryLoggerProvider(logs => logs
                .AddProcessor(new ExecutionIdLogProcessor())
                .AddOtlpExporter(o => Otlp(o, endpoint, "v1/logs")));
        }

        // Hosted services start in registration order: go first so the providers listen before Kestrel accepts.
        builder.Services.Insert(0, ServiceDescriptor.Singleton<IHostedService, TelemetryStarter>());
        return builder;
    }

    private static Uri? OtlpBase(IConfiguration configuration)
    {
        var value = configuration[OtlpEndpointKey];
        if (string.IsNullOrWhiteSpace(value))
            return null;
        if (!Uri.TryCreate(value.TrimEnd('/') + "/", UriKind.Absolute, out var uri))
            throw new InvalidOperationException(
                $"{OtlpEndpointKey} '{value}' is not an absolute URI: set it to the collector's OTLP/HTTP base address, e.g. http://127.0.0.1:4318.");
        return uri;
    }

    // An endpoint set in code is used as is (unlike the env var), so the signal path must be spelled out.
    private static void Otlp(OtlpExporterOptions options, Uri baseUri, string signalPath)
    {
        options.Endpoint = new Uri(baseUri, signalPath);
        options.Protocol = OtlpExportProtocol.HttpProtobuf;
    }

    /// <summary>Resolves the providers at start; a provider nobody resolved would never listen.</summary>
    private sealed class TelemetryStarter(TracerProvider tracer, IEnumerable<MeterProvider> meters, ILogger<TelemetryStarter> logger,
        IConfiguration configuration) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            GC.KeepAlive(tracer);
            GC.KeepAlive(meters.ToArray());
            if (OtlpBase(configuration) is { } endpoint)
                logger.OtlpExportEnabled(endpoint.ToString());
            else
                logger.OtlpExportDisabled();
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

/// <summary>
/// Keeps database statements that belong to no request or run out of the export: the Backend's lease and recovery
/// polls make a one-span trace every second or two on an idle lab (measured: 52 of 55 traces after 90 s idle), which
/// buried the executions on the dashboard and, in its bounded window, would evict them. A statement inside a request
/// or a run has a parent and is kept. Clearing Recorded at the end is what the exporter's processor reads.
/// </summary>
internal sealed class BackgroundStatementFilter : BaseProcessor<Activity>
{
    /// <summary>Npgsql's ActivitySource.</summary>
    public const string DatabaseSource = "Npgsql";

    public override void OnEnd(Activity data)
    {
        if (data.Source.Name == DatabaseSource && data.ParentSpanId == default)
            data.ActivityTraceFlags &= ~ActivityTraceFlags.Recorded;
    }
}

/// <summary>What telemetry may carry (section <c>Telemetry</c>).</summary>
public sealed class TelemetryOptions
{
    public const string Section = "Telemetry";

    /// <summary>
    /// Whether prompt and output text may appear in logs and spans (OpenTelemetry's GenAI conventions: content capture
    /// must be possible to turn off; here it is off unless turned on). Off by default: prompts are user data.
    /// </summary>
    public bool CaptureContent { get; set; }

    /// <summary>With <see cref="CaptureContent"/> on, at most this many characters of a prompt or output are captured.</summary>
    [System.ComponentModel.DataAnnotations.Range(1, 1_000_000)]
    public int CaptureContentMaxChars { get; set; } = 500;

    /// <summary>
    /// The first <see cref="CaptureContentMaxChars"/> characters of <paramref name="text"/> (never splitting a surrogate
    /// pair), with an ellipsis when cut.
    /// </summary>
    public string Preview(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length <= CaptureContentMaxChars)
            return text;
        var cut = char.IsHighSurrogate(text[CaptureContentMaxChars - 1]) ? CaptureContentMaxChars - 1 : CaptureContentMaxChars;
        return string.Concat(text.AsSpan(0, cut), "…");
    }
}

/// <summary>
/// Completes ASP.NET Core's server span once the endpoint and status are known: the display name
/// <c>"{METHOD} {route}"</c>, <c>http.route</c>, <c>http.response.status_code</c> and Error for 5xx.
/// </summary>
internal sealed class ServerSpanMiddleware(RequestDelegate next)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var activity = Activity.Current;
        if (activity is not null && HealthEndpoints.IsProbe(context.Request.Path))
        {
            // Probes hit every few seconds: keep their spans (and children) out of the export.
            activity.ActivityTraceFlags &= ~ActivityTraceFlags.Recorded;
        }

        try
        {
            await next(context);
        }
        catch (Exception ex)
        {
            Complete(activity, context, ex);
            throw;
        }

        Complete(activity, context, null);
    }

    private static void Complete(Activity? activity, HttpContext context, Exception? exception)
    {
        if (activity is null)
            return;

        // The exception handler clears the endpoint before it writes the problem, but keeps it in its feature.
        var handled = context.Features.Get<IExceptionHandlerFeature>();
        var route = ((context.GetEndpoint() ?? handled?.Endpoint) as RouteEndpoint)?.RoutePattern.RawText;
        if (route is not null)
        {
            activity.DisplayName = $"{context.Request.Method} {route}";
            activity.SetTag("http.route", route);
        }

        var status = exception is null ? context.Response.StatusCode : StatusCodes.Status500InternalServerError;
        activity.SetTag("http.response.status_code", status);
        if (status >= 500)
        {
            activity.SetStatus(ActivityStatusCode.Error);
            var error = exception ?? handled?.Error;
            activity.SetTag("error.type", error?.GetType().FullName ?? status.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }
}

/// <summary>The pipeline pieces every service gets without asking, in front of everything it adds.</summary>
internal sealed class ServiceDefaultsStartupFilter : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.UseMiddleware<ServerSpanMiddleware>();
        app.UseMiddleware<ExecutionLogScopeMiddleware>();
        // Both write ProblemDetails through IProblemDetailsService, so code and trace_id are added there;
        // the exception handler writes a generic title and never the exception message outside Development.
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        next(app);
    };
}
