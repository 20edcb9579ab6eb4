using System.ComponentModel.DataAnnotations;
using System.Net;

namespace AgentLab.Backend.Security.RateLimiting;

/// <summary>
/// Which reverse proxies may say who the client is (section <c>ForwardedHeaders</c>). <c>X-Forwarded-For</c> and
/// <c>X-Forwarded-Proto</c> are read only from a peer in <see cref="KnownProxies"/> or <see cref="KnownNetworks"/>;
/// with neither set they are ignored from everyone (the framework's default would trust loopback, and an empty list
/// would make it trust everybody: both are replaced here).
/// </summary>
public sealed class ForwardedHeadersSettings : IValidatableObject
{
    public const string Section = "ForwardedHeaders";

    /// <summary>Addresses of trusted proxies, e.g. <c>10.0.0.5</c>.</summary>
    public List<string> KnownProxies { get; set; } = [];

    /// <summary>Networks of trusted proxies in CIDR form, e.g. <c>10.0.0.0/8</c>.</summary>
    public List<string> KnownNetworks { get; set; } = [];

    /// <summary>How many proxies (entries of X-Forwarded-For, from the right) are read at most.</summary>
    [Range(1, 20)] public int ForwardLimit { get; set; } = 1;

    public bool TrustsAnyProxy => KnownProxies.Count > 0 || KnownNetworks.Count > 0;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var proxy in KnownProxies.Where(p => !IPAddress.TryParse(p, out _)))
            yield return new ValidationResult($"ForwardedHeaders:KnownProxies has '{proxy}', which is not an IP address.", [nameof(KnownProxies)]);
        foreach (var network in KnownNetworks.Where(n => !IPNetwork.TryParse(n, out _)))
            yield return new ValidationResult($"ForwardedHeaders:KnownNetworks has '{network}', which is not a network in CIDR form (10.0.0.0/8).", [nameof(KnownNetworks)]);
    }
}
