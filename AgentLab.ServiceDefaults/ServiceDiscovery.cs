using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Primitives;

namespace AgentLab.ServiceDefaults;

/// <summary>
/// Resolves logical service addresses (<c>http://labservice/...</c>) from configuration in Aspire's convention:
/// <c>services:{name}:{endpointName}:{index}</c> (env <c>services__labservice__http__0=http://127.0.0.1:8001</c>),
/// where the endpoint name is the URI scheme (<c>http</c> or <c>https</c>). Several indices are used round-robin.
/// Hosts with a dot, <c>localhost</c> and IP addresses are real addresses and are left alone.
/// </summary>
/// <remarks>Parsed endpoints are cached and the cache is dropped when configuration reloads.</remarks>
public sealed class ServiceEndpointResolver
{
    /// <summary>The configuration section that holds the endpoints.</summary>
    public const string Section = "services";

    private readonly IConfiguration configuration;
    private ConcurrentDictionary<(string Name, string Endpoint), Endpoints> cache = new();

    /// <summary>Creates a resolver over <paramref name="configuration"/>.</summary>
    public ServiceEndpointResolver(IConfiguration configuration)
    {
        this.configuration = configuration;
        ChangeToken.OnChange(configuration.GetReloadToken, () => cache = new());
    }

    /// <summary>True when <paramref name="uri"/>'s host is a logical service name that this resolver rewrites.</summary>
    public static bool IsLogicalName(Uri uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        return uri.IsAbsoluteUri
            && uri.HostNameType == UriHostNameType.Dns
            && !uri.Host.Contains('.', StringComparison.Ordinal)
            && !string.Equals(uri.Host, "localhost", StringComparison.OrdinalIgnoreCase)
            && !IPAddress.TryParse(uri.Host, out _);
    }

    /// <summary>
    /// Returns <paramref name="uri"/> with its scheme, host and port replaced by the configured endpoint of the
    /// logical service it names (path and query kept), or <paramref name="uri"/> itself when it is not logical.
    /// </summary>
    /// <exception cref="ServiceEndpointNotFoundException">The logical name has no configured endpoint.</exception>
    public Uri Resolve(Uri uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        if (!IsLogicalName(uri))
            return uri;

        var key = (uri.Host, uri.Scheme); // Uri already lower-cases both
        var endpoints = cache.GetOrAdd(key, static (k, config) => Load(config, k.Name, k.Endpoint), configuration);
        var target = endpoints.Next()
            ?? throw new ServiceEndpointNotFoundException(uri.Host,
                $"Service '{uri.Host}' has no endpoint: set services__{uri.Host}__{uri.Scheme}__0 (e.g. {uri.Scheme}://127.0.0.1:8001).");

        // Keep the caller's path and query; an endpoint with a base path (behind a proxy) prefixes it.
        var builder = new UriBuilder(uri) { Scheme = target.Scheme, Host = target.Host, Port = target.Port };
        var prefix = target.AbsolutePath.TrimEnd('/');
        if (prefix.Length > 0)
            builder.Path = prefix + uri.AbsolutePath;
        return builder.Uri;
    }

    private static Endpoints Load(IConfiguration configuration, string name, string endpointName)
    {
        var section = configuration.GetSection(Section).GetSection(name).GetSection(endpointName);
        // Either a single value (services:x:http=...) or indexed children (services:x:http:0=...).
        var values = section.Value is { Length: > 0 } single
            ? [single]
            : section.GetChildren()
                .OrderBy(c => int.TryParse(c.Key, out var i) ? i : int.MaxValue)
                .Select(c => c.Value)
                .OfType<string>()
                .ToArray();

        var uris = new List<Uri>(values.Length);
        foreach (var value in values)
        {
            if (!Uri.TryCreate(value, UriKind.Absolute, out var parsed))
                throw new InvalidOperationException(
                    $"Service '{name}' endpoint '{value}' is not an absolute URI: set services__{name}__{endpointName}__0 to e.g. {endpointName}://127.0.0.1:8001.");
            uris.Add(parsed);
        }
        return new Endpoints([.. uris]);
    }

    private sealed class Endpoints(Uri[] uris)
    {
        private int next = -1;

        public Uri? Next() => uris.Length switch
        {
            0 => null,
            1 => uris[0],
            _ => uris[(int)((uint)Interlocked.Increment(ref next) % (uint)uris.Length)],
        };
    }
}

/// <summary>
/// A logical service name has no endpoint in configuration. Typed so that callers can answer "unavailable, set
/// services__{name}__http__0" instead of letting a configuration gap surface as a 500.
/// </summary>
public sealed class ServiceEndpointNotFoundException(string service, string message) : InvalidOperationException(message)
{
    /// <summary>The logical service name that could not be resolved.</summary>
    public string Service { get; } = service;
}

/// <summary>Rewrites requests to logical service names before they are sent.</summary>
internal sealed class ServiceDiscoveryHandler(ServiceEndpointResolver resolver) : DelegatingHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.RequestUri is { } uri)
            request.RequestUri = resolver.Resolve(uri);
        return base.SendAsync(request, cancellationToken);
    }
}

/// <summary>Registration of configuration-based service discovery.</summary>
public static class ServiceDiscoveryExtensions
{
    /// <summary>Registers <see cref="ServiceEndpointResolver"/> (once).</summary>
    public static IServiceCollection AddServiceDiscoveryCore(this IServiceCollection services)
    {
        services.TryAddSingleton<ServiceEndpointResolver>();
        return services;
    }

    /// <summary>
    /// Resolves logical service names in this client's request URIs from configuration
    /// (<c>services:{name}:{scheme}:{index}</c>). AddServiceDefaults adds it to every client.
    /// </summary>
    public static IHttpClientBuilder AddServiceDiscovery(this IHttpClientBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddServiceDiscoveryCore();
        return builder.AddHttpMessageHandler(sp => new ServiceDiscoveryHandler(sp.GetRequiredService<ServiceEndpointResolver>()));
    }
}
