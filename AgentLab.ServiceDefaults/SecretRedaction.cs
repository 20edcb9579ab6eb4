using System.Diagnostics;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using OpenTelemetry;

namespace AgentLab.ServiceDefaults;

/// <summary>
/// Keeps credentials that travel in query strings (stream tickets, and the <c>access_token</c>/<c>token</c> that
/// other clients habitually put there) out of telemetry: their values become <c>[REDACTED]</c>.
/// </summary>
/// <remarks>
/// Where a query string reaches telemetry in ASP.NET Core 10 / .NET 10, as checked: the hosting log
/// (<c>Microsoft.AspNetCore.Hosting.Diagnostics</c>, Information: <c>Request starting HTTP/1.1 GET
/// http://host/path?query</c> and <c>Request finished ...</c>, with <c>QueryString</c> as a state value); server spans
/// carry <c>url.path</c> and <c>url.scheme</c> but not <c>url.query</c>; HttpClient spans carry <c>url.full</c> with the
/// query values already replaced by <c>*</c> unless <c>System.Net.Http.DisableUriRedaction</c> is set. The logger
/// factory wrapper and the span processor here cover all of them, whatever the switches say.
/// </remarks>
public static partial class SecretRedaction
{
    /// <summary>What a redacted value is replaced with.</summary>
    public const string Redacted = "[REDACTED]";

    /// <summary>Span attributes that can hold a URL or a query string.</summary>
    internal static readonly string[] UrlTags = ["url.full", "url.query", "url.original", "http.url", "http.target"];

    // A parameter name at the start of a query (or of the text) or after & / ;, up to the end of its value.
    [GeneratedRegex(@"(?<=^|[?&;])(ticket|access_token|id_token|refresh_token|token)=[^&#;\s""'<>]*",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex SecretParameter();

    /// <summary>Whether <paramref name="text"/> may hold a secret query parameter (a cheap test before the regex).</summary>
    public static bool MayHoldSecret(string? text) =>
        text is not null
        && (text.Contains("token=", StringComparison.OrdinalIgnoreCase) || text.Contains("ticket=", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// <paramref name="text"/> (a URL, a query string, or a log message holding one) with the values of
    /// <c>ticket</c>, <c>access_token</c>, <c>token</c> (and <c>id_token</c>, <c>refresh_token</c>) replaced by
    /// <see cref="Redacted"/>; the same instance when there is nothing to redact.
    /// </summary>
    public static string Redact(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return MayHoldSecret(text) ? SecretParameter().Replace(text, m => m.Groups[1].Value + "=" + Redacted) : text;
    }

    /// <summary>
    /// Wraps the container's <see cref="ILoggerFactory"/> so that every logger, whatever its provider (console, OTLP,
    /// a test's), gets log state and messages with secret query values redacted.
    /// </summary>
    public static IServiceCollection AddLogRedaction(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (services.Any(d => d.ServiceType == typeof(RedactingLoggerFactory)))
            return services;
        // The real factory stays a singleton the container creates (and disposes); ILoggerFactory becomes the wrapper.
        services.TryAddSingleton<LoggerFactory>();
        services.AddSingleton(sp => new RedactingLoggerFactory(sp.GetRequiredService<LoggerFactory>()));
        services.Replace(ServiceDescriptor.Singleton<ILoggerFactory>(sp => sp.GetRequiredService<RedactingLoggerFactory>()));
        return services;
    }
}

/// <summary>An <see cref="ILoggerFactory"/> whose loggers redact secret query values (<see cref="SecretRedaction"/>).</summary>
internal sealed class RedactingLoggerFactory(LoggerFactory inner) : ILoggerFactory
{
    public ILogger CreateLogger(string categoryName) => new RedactingLogger(inner.CreateLogger(categoryName));

    public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

    // The container owns and disposes the inner factory.
    public void Dispose()
    {
    }
}

internal sealed class RedactingLogger(ILogger inner) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);

    public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!inner.IsEnabled(logLevel))
            return;
        if (state is IReadOnlyList<KeyValuePair<string, object?>> values && RedactedState<TState>.TryCreate(state, values, formatter) is { } redacted)
            inner.Log(logLevel, eventId, redacted, exception, static (s, e) => s.Format(e));
        else
            inner.Log(logLevel, eventId, state, exception, formatter);
    }
}

/// <summary>A log state whose string values (and formatted message) had secret query values redacted.</summary>
internal sealed class RedactedState<TState> : IReadOnlyList<KeyValuePair<string, object?>>
{
    private readonly TState original;
    private readonly Func<TState, Exception?, string> formatter;
    private readonly KeyValuePair<string, object?>[] values;

    private RedactedState(TState original, Func<TState, Exception?, string> formatter, KeyValuePair<string, object?>[] values)
    {
        this.original = original;
        this.formatter = formatter;
        this.values = values;
    }

    /// <summary>A redacted copy, or null when no value holds a secret (the common case: nothing is copied).</summary>
    public static RedactedState<TState>? TryCreate(TState state, IReadOnlyList<KeyValuePair<string, object?>> source,
        Func<TState, Exception?, string> formatter)
    {
        KeyValuePair<string, object?>[]? copy = null;
        for (var i = 0; i < source.Count; i++)
        {
            var (key, value) = source[i];
            var text = value switch { string s => s, Uri u => u.OriginalString, _ => null };
            if (key == "{OriginalFormat}" || !SecretRedaction.MayHoldSecret(text))
                continue;
            var redacted = SecretRedaction.Redact(text!);
            if (ReferenceEquals(redacted, text))
                continue;
            copy ??= [.. source];
            copy[i] = new(key, redacted);
        }
        return copy is null ? null : new RedactedState<TState>(state, formatter, copy);
    }

    public string Format(Exception? exception) => SecretRedaction.Redact(formatter(original, exception));

    public KeyValuePair<string, object?> this[int index] => values[index];

    public int Count => values.Length;

    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, object?>>)values).GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => Format(null);
}

/// <summary>Redacts secret query values in the URL attributes of every span, when it starts and when it ends.</summary>
internal sealed class SecretRedactionProcessor : BaseProcessor<Activity>
{
    public override void OnStart(Activity data) => Redact(data);

    public override void OnEnd(Activity data) => Redact(data);

    private static void Redact(Activity activity)
    {
        foreach (var tag in SecretRedaction.UrlTags)
        {
            if (activity.GetTagItem(tag) is string value && SecretRedaction.MayHoldSecret(value))
                activity.SetTag(tag, SecretRedaction.Redact(value));
        }
        if (SecretRedaction.MayHoldSecret(activity.DisplayName))
            activity.DisplayName = SecretRedaction.Redact(activity.DisplayName);
    }
}
