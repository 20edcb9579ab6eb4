using System.Collections.Concurrent;
using System.ComponentModel.DataAnnotations;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;

namespace AgentLab.ServiceDefaults;

/// <summary>Settings of <see cref="ResilienceExtensions.AddIdempotentResilienceHandler"/>.</summary>
public sealed class IdempotentResilienceOptions
{
    /// <summary>Upper bound for the whole call, retries and delays included.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan TotalTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Upper bound for one attempt.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Retries after the first attempt (so at most <c>MaxRetryAttempts + 1</c> attempts).</summary>
    [Range(0, 10)]
    public int MaxRetryAttempts { get; set; } = 3;

    /// <summary>First backoff delay; it grows exponentially, with jitter.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan BaseDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// Longest wait honoured from a <c>Retry-After</c> header. A server that asks for a longer pause (or for one that
    /// would outlast <see cref="TotalTimeout"/>) is not retried: its answer, Retry-After included, goes to the caller.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Share of failed calls within <see cref="SamplingDuration"/> that opens the circuit.</summary>
    [Range(0.01, 1.0)]
    public double FailureRatio { get; set; } = 0.1;

    /// <summary>Calls needed within <see cref="SamplingDuration"/> before the circuit may open.</summary>
    [Range(2, 10_000)]
    public int MinimumThroughput { get; set; } = 100;

    /// <summary>Window over which failures are counted.</summary>
    [Range(typeof(TimeSpan), "00:00:00.500", "01:00:00")]
    public TimeSpan SamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an open circuit fails calls fast before it tries again.</summary>
    [Range(typeof(TimeSpan), "00:00:00.500", "01:00:00")]
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>Resilience for HTTP calls that are safe to repeat.</summary>
public static class ResilienceExtensions
{
    /// <summary>
    /// Adds total timeout, retry (exponential backoff with jitter, <c>Retry-After</c> honoured up to a cap) on
    /// <see cref="HttpRequestException"/>, attempt timeouts, 408, 429 and 5xx, a circuit breaker and a per-attempt
    /// timeout, applied ONLY to idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE). Other methods (POST, PATCH)
    /// pass through untouched: repeating them could repeat their effect.
    /// </summary>
    /// <remarks>
    /// Never use it for model calls: a generation is not idempotent (a retry runs and bills it again), can take
    /// minutes (an attempt timeout would kill a healthy one), and streams (a retry after the first byte would
    /// duplicate output). Model calls use phase timeouts with cancellation tokens instead.
    /// A PUT body must be re-readable (string/byte content) to be retried.
    /// </remarks>
    public static IHttpClientBuilder AddIdempotentResilienceHandler(this IHttpClientBuilder builder,
        Action<IdempotentResilienceOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var name = builder.Name ?? Options.DefaultName;
        var options = builder.Services.AddOptions<IdempotentResilienceOptions>(name).ValidateDataAnnotations().ValidateOnStart();
        if (configure is not null)
            options.Configure(configure);

        builder.Services.TryAddSingleton<IdempotentPipelines>();
        return builder.AddHttpMessageHandler(sp => new IdempotentResilienceHandler(sp.GetRequiredService<IdempotentPipelines>().Get(name)));
    }
}

/// <summary>
/// One pipeline per client name for the life of the app, so the circuit breaker's state survives the
/// HttpClientFactory's handler rotation.
/// </summary>
internal sealed class IdempotentPipelines(IOptionsMonitor<IdempotentResilienceOptions> options, ILoggerFactory loggers)
{
    private readonly ConcurrentDictionary<string, ResiliencePipeline<HttpResponseMessage>> pipelines = new(StringComparer.Ordinal);
    private readonly ILogger logger = loggers.CreateLogger("AgentLab.Resilience");
    private readonly IOptionsMonitor<IdempotentResilienceOptions> options = options;

    public ResiliencePipeline<HttpResponseMessage> Get(string name) =>
        pipelines.GetOrAdd(name, static (n, self) => self.Build(self.options.Get(n)), this);

    private ResiliencePipeline<HttpResponseMessage> Build(IdempotentResilienceOptions o)
    {
        var transient = new PredicateBuilder<HttpResponseMessage>()
            .Handle<HttpRequestException>()
            .Handle<TimeoutRejectedException>()
            .HandleResult(IsTransient);

        // Outer to inner, as in Microsoft's standard pipeline: the total timeout bounds the retries; the breaker
        // counts each attempt; the attempt timeout is innermost so a hung attempt is retried, not the whole call.
        return new ResiliencePipelineBuilder<HttpResponseMessage>()
            .AddTimeout(o.TotalTimeout)
            .AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                ShouldHandle = args => ValueTask.FromResult(ShouldRetry(args.Outcome, args.Context, o)),
                MaxRetryAttempts = o.MaxRetryAttempts,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = o.BaseDelay,
                DelayGenerator = args => ValueTask.FromResult(RetryAfter(args.Outcome.Result, o.MaxRetryAfter)),
                OnRetry = args =>
                {
                    var request = args.Context.Properties.GetValue(IdempotentResilienceHandler.RequestKey, null!);
                    logger.RetryingRequest(request?.Method.Method ?? "?", request?.RequestUri?.Host ?? "?", args.AttemptNumber + 1,
                        args.Outcome.Exception?.GetType().Name ?? ((int)args.Outcome.Result!.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture),
                        args.RetryDelay.TotalMilliseconds);
                    return default;
                },
            })
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions<HttpResponseMessage>
            {
                ShouldHandle = transient,
                FailureRatio = o.FailureRatio,
                MinimumThroughput = o.MinimumThroughput,
                SamplingDuration = o.SamplingDuration,
                BreakDuration = o.BreakDuration,
                OnOpened = args =>
                {
                    var request = args.Context.Properties.GetValue(IdempotentResilienceHandler.RequestKey, null!);
                    logger.CircuitOpened(request?.RequestUri?.Host ?? "?", args.BreakDuration.TotalSeconds);
                    return default;
                },
                OnClosed = args =>
                {
                    var request = args.Context.Properties.GetValue(IdempotentResilienceHandler.RequestKey, null!);
                    logger.CircuitClosed(request?.RequestUri?.Host ?? "?");
                    return default;
                },
            })
            .AddTimeout(o.AttemptTimeout)
            .Build();
    }

    /// <summary>
    /// Transient failures are retried, except an answer whose Retry-After asks for more than we will wait: waiting it
    /// out would end in the total timeout and turn the server's informative answer into a bare timeout.
    /// </summary>
    internal static bool ShouldRetry(Outcome<HttpResponseMessage> outcome, ResilienceContext context, IdempotentResilienceOptions o)
    {
        if (outcome.Exception is { } ex)
            return ex is HttpRequestException or TimeoutRejectedException;
        if (outcome.Result is not { } response || !IsTransient(response))
            return false;
        var header = response.Headers.RetryAfter;
        if ((header?.Delta ?? (header?.Date is { } date ? date - DateTimeOffset.UtcNow : null)) is not { } wait)
            return true;
        var elapsed = context.Properties.TryGetValue(IdempotentResilienceHandler.StartedKey, out var started)
            ? System.Diagnostics.Stopwatch.GetElapsedTime(started)
            : TimeSpan.Zero;
        return wait <= o.MaxRetryAfter && elapsed + wait < o.TotalTimeout;
    }

    internal static bool IsTransient(HttpResponseMessage response) =>
        response.StatusCode is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests || (int)response.StatusCode >= 500;

    /// <summary>The server's Retry-After, capped; null lets the exponential backoff decide.</summary>
    internal static TimeSpan? RetryAfter(HttpResponseMessage? response, TimeSpan cap)
    {
        var header = response?.Headers.RetryAfter;
        var wait = header?.Delta ?? (header?.Date is { } date ? date - DateTimeOffset.UtcNow : null);
        if (wait is not { } w)
            return null;
        return w < TimeSpan.Zero ? TimeSpan.Zero : w > cap ? cap : w;
    }
}

/// <summary>Runs idempotent requests through the pipeline; everything else goes straight through.</summary>
internal sealed class IdempotentResilienceHandler(ResiliencePipeline<HttpResponseMessage> pipeline) : DelegatingHandler
{
    internal static readonly ResiliencePropertyKey<HttpRequestMessage?> RequestKey = new("agentlab.http_request");
    internal static readonly ResiliencePropertyKey<long> StartedKey = new("agentlab.started");

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (!IsIdempotent(request.Method))
            return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);

        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(RequestKey, request);
        context.Properties.Set(StartedKey, System.Diagnostics.Stopwatch.GetTimestamp());
        try
        {
            // Polly disposes the responses of failed attempts before it retries.
            var outcome = await pipeline.ExecuteOutcomeAsync(
                static async (ctx, state) =>
                {
                    try
                    {
                        return Outcome.FromResult(await state.Self.SendOnceAsync(state.Request, ctx.CancellationToken).ConfigureAwait(false));
                    }
                    catch (Exception ex)
                    {
                        return Outcome.FromException<HttpResponseMessage>(ex);
                    }
                },
                context,
                (Self: this, Request: request)).ConfigureAwait(false);
            outcome.ThrowIfException();
            return outcome.Result!;
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    private Task<HttpResponseMessage> SendOnceAsync(HttpRequestMessage request, CancellationToken ct) => base.SendAsync(request, ct);

    internal static bool IsIdempotent(HttpMethod method) =>
        method == HttpMethod.Get || method == HttpMethod.Head || method == HttpMethod.Options
        || method == HttpMethod.Put || method == HttpMethod.Delete;
}
