using System.Globalization;
using System.Net;
using System.Threading.RateLimiting;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Security.RateLimiting;

/// <summary>
/// Rate limits and client addresses, wired for <c>Program.cs</c>: forwarded headers trusted only from configured
/// proxies (first in the pipeline), then ASP.NET Core's rate limiter with <see cref="AgentLabRateLimiter"/> as its
/// global limiter (after authentication, so it knows the subject; before authorization, so that anonymous floods
/// are limited by address too). Refusals are 429 <c>rate_limited</c> with Retry-After, never the framework's 503.
/// </summary>
public static class RateLimitingExtensions
{
    public static IServiceCollection AddAgentLabRateLimits(this IServiceCollection services)
    {
        services.AddOptions<RateLimitOptions>().BindConfiguration(RateLimitOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<ForwardedHeadersSettings>().BindConfiguration(ForwardedHeadersSettings.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<AgentLabRateLimiter>();

        services.AddOptions<ForwardedHeadersOptions>().Configure<IOptions<ForwardedHeadersSettings>>((forwarded, settings) => Configure(forwarded, settings.Value));
        services.AddRateLimiter(_ => { });
        services.AddOptions<RateLimiterOptions>().Configure<AgentLabRateLimiter>((limiter, global) =>
        {
            limiter.GlobalLimiter = global;
            limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            limiter.OnRejected = RejectAsync;
        });
        return services;
    }

    /// <summary>
    /// <c>UseForwardedHeaders</c> with the configured proxies only (call it first). Nothing configured: the
    /// headers are ignored, and the client address is the peer's.
    /// </summary>
    public static IApplicationBuilder UseAgentLabForwardedHeaders(this IApplicationBuilder app)
    {
        var settings = app.ApplicationServices.GetRequiredService<IOptions<ForwardedHeadersSettings>>().Value;
        if (settings.TrustsAnyProxy)
        {
            app.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(RateLimitingExtensions).FullName!)
                .ForwardedHeadersTrusted(string.Join(", ", settings.KnownProxies), string.Join(", ", settings.KnownNetworks), settings.ForwardLimit);
        }
        return app.UseForwardedHeaders();
    }

    /// <summary><c>UseRateLimiter</c>, after <c>UseAuthentication</c> and before <c>UseAuthorization</c>.</summary>
    public static IApplicationBuilder UseAgentLabRateLimits(this IApplicationBuilder app)
    {
        _ = app.ApplicationServices.GetRequiredService<AgentLabRateLimiter>();   // says at start what the limits are
        return app.UseRateLimiter();
    }

    private static void Configure(ForwardedHeadersOptions forwarded, ForwardedHeadersSettings settings)
    {
        // The framework trusts loopback by default, and with BOTH lists empty it checks nobody and trusts everyone;
        // so the lists are replaced, and with nothing configured the headers are not read at all.
        forwarded.KnownProxies.Clear();
        forwarded.KnownIPNetworks.Clear();
        if (!settings.TrustsAnyProxy)
        {
            forwarded.ForwardedHeaders = ForwardedHeaders.None;
            return;
        }
        forwarded.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto;
        forwarded.ForwardLimit = settings.ForwardLimit;
        foreach (var proxy in settings.KnownProxies)
            forwarded.KnownProxies.Add(IPAddress.Parse(proxy));
        foreach (var network in settings.KnownNetworks)
            forwarded.KnownIPNetworks.Add(System.Net.IPNetwork.Parse(network));
    }

    private static async ValueTask RejectAsync(OnRejectedContext context, CancellationToken ct)
    {
        var http = context.HttpContext;
        var lease = context.Lease as WindowLease;
        var limit = lease?.Limit ?? "unknown";
        var retryAfter = RetryAfterSeconds(lease?.RetryAfter ?? AgentLabRateLimiter.Window);
        http.Response.Headers.RetryAfter = retryAfter.ToString(CultureInfo.InvariantCulture);
        http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(RateLimitingExtensions).FullName!)
            .RequestRateLimited(limit, lease?.Permitted ?? 0, retryAfter);
        var who = limit switch
        {
            AgentLabRateLimiter.ExecutionsLimit => $"executions submitted by this token's subject (at most {lease!.Permitted} per minute)",
            AgentLabRateLimiter.SubjectLimit => $"requests from this token's subject (at most {lease!.Permitted} per minute)",
            AgentLabRateLimiter.IpLimit => $"requests from this client address (at most {lease!.Permitted} per minute)",
            _ => "requests",
        };
        await Problems.Create(StatusCodes.Status429TooManyRequests, "rate_limited", "Too many requests",
            $"Too many {who}. Retry after {retryAfter} s, when the current one-minute window ends.",
            [new("limit", limit), new("limit_per_minute", lease?.Permitted), new("retry_after_seconds", retryAfter)]).ExecuteAsync(http);
    }

    /// <summary>Whole seconds, rounded up and at least 1 (Retry-After: 0 would invite an immediate retry).</summary>
    public static int RetryAfterSeconds(TimeSpan wait) => Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));

    /// <summary>
    /// 429 <c>too_many_executions</c>: the subject already has its maximum of queued and running executions
    /// (counted in PostgreSQL at submit time, so on every replica).
    /// </summary>
    public static IResult TooManyExecutions(HttpContext http, RateLimitOptions options, string subject, int active)
    {
        http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(RateLimitingExtensions).FullName!)
            .TooManyExecutions(subject, active, options.MaxConcurrentExecutionsPerSubject);
        http.Response.Headers.RetryAfter = options.ConcurrentExecutionsRetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
        return Problems.Create(StatusCodes.Status429TooManyRequests, "too_many_executions", "Too many executions at once",
            $"This token's subject already has {active} executions queued or running; at most {options.MaxConcurrentExecutionsPerSubject} " +
            $"may be at once. Wait for one to finish (GET /api/v1/executions/{{id}}), or cancel one, then retry (in about " +
            $"{options.ConcurrentExecutionsRetryAfterSeconds} s).",
            [new("limit", "concurrent_executions"), new("max_concurrent_executions", options.MaxConcurrentExecutionsPerSubject), new("active_executions", active)]);
    }
}
