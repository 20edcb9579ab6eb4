using System.ComponentModel.DataAnnotations;
using AgentLab.ServiceDefaults.Security;

namespace AgentLab.Backend.Security;

/// <summary>
/// How callers prove who they are (section <c>Auth</c>): bearer JWTs signed with a symmetric key (local use), or
/// issued by an OIDC authority. One of <see cref="SigningKey"/>, <see cref="SigningKeyFile"/> and
/// <see cref="Authority"/> must be set outside Development, or the Backend refuses to start.
/// </summary>
public sealed class AuthOptions : IValidatableObject
{
    public const string Section = "Auth";

    /// <summary>Base64 (or base64url) of at least 32 random bytes; HS256 tokens signed with it are accepted.</summary>
    public string? SigningKey { get; set; }

    /// <summary>A file holding such a key (as <see cref="SigningKey"/>), for secrets mounted as files.</summary>
    public string? SigningKeyFile { get; set; }

    /// <summary>An OIDC issuer (https://...): keys come from its discovery document; RS256/ES256/PS256 are accepted.</summary>
    public string? Authority { get; set; }

    /// <summary>Required <c>iss</c> (for an authority, its issuer unless set here).</summary>
    public string Issuer { get; set; } = AgentLabTokens.DefaultIssuer;

    /// <summary>Required <c>aud</c>.</summary>
    public string Audience { get; set; } = AgentLabTokens.DefaultAudience;

    /// <summary>Tolerance on <c>exp</c> and <c>nbf</c> for clocks that differ (at most 30 s; JwtBearer's default is 5 min).</summary>
    [Range(0, 30)] public int ClockSkewSeconds { get; set; } = 30;

    /// <summary>The role that sees every subject's executions, events and graphs.</summary>
    [Required] public string AdminRole { get; set; } = AgentLabTokens.AdminRole;

    /// <summary>Lifetime of a token minted by <c>dotnet run --project AgentLab.Backend -- token</c> (unless --lifetime says).</summary>
    [Range(1, 60 * 24 * 30)] public int MintedTokenMinutes { get; set; } = 8 * 60;

    /// <summary>Whether an authority's metadata must come over HTTPS (turn off only for a local test issuer).</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var sources = new[] { SigningKey, SigningKeyFile, Authority }.Count(s => !string.IsNullOrWhiteSpace(s));
        if (sources > 1)
        {
            yield return new ValidationResult(
                "Set only one of Auth:SigningKey, Auth:SigningKeyFile and Auth:Authority; more than one is ambiguous.",
                [nameof(SigningKey), nameof(SigningKeyFile), nameof(Authority)]);
        }
        if (Authority is { Length: > 0 } authority && !Uri.TryCreate(authority, UriKind.Absolute, out _))
            yield return new ValidationResult($"Auth:Authority '{authority}' is not an absolute URL.", [nameof(Authority)]);
        if (string.IsNullOrWhiteSpace(Issuer) || string.IsNullOrWhiteSpace(Audience))
            yield return new ValidationResult("Auth:Issuer and Auth:Audience must not be empty.", [nameof(Issuer), nameof(Audience)]);
    }
}
