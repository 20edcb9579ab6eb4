using System.Buffers.Text;
using System.Security.Claims;
using System.Security.Cryptography;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AgentLab.ServiceDefaults.Security;

/// <summary>
/// AgentLab's own access tokens: HS256 JWTs with <c>sub</c>, <c>role</c>, <c>iss</c>, <c>aud</c>, <c>iat</c>,
/// <c>nbf</c> and <c>exp</c>, signed with a symmetric key of at least 256 bits. The Backend's <c>token</c> command and
/// the AppHost's development token are minted here; the Backend validates them with JwtBearer.
/// </summary>
public static class AgentLabTokens
{
    public const string DefaultIssuer = "agentlab";
    public const string DefaultAudience = "agentlab-api";
    public const string AdminRole = "admin";
    public const string SubjectClaim = "sub";
    public const string RoleClaim = "role";

    /// <summary>The one algorithm accepted for symmetric keys (RFC 8725: pin it, never read it from the token).</summary>
    public const string Algorithm = SecurityAlgorithms.HmacSha256;

    /// <summary>The smallest key HS256 is given: 32 bytes.</summary>
    public const int MinimumKeyBytes = 32;

    /// <summary>A new random 256-bit key.</summary>
    public static byte[] NewKey() => RandomNumberGenerator.GetBytes(MinimumKeyBytes);

    /// <summary>The key as configuration holds it: base64url, no padding.</summary>
    public static string Encode(byte[] key) => Base64Url.EncodeToString(key);

    /// <summary>
    /// Reads a configured key: base64 or base64url of at least 32 bytes. Anything else is refused with a sentence
    /// that says how to make a good one.
    /// </summary>
    public static byte[] ParseKey(string text, string source)
    {
        var trimmed = text.Trim();
        byte[]? key = null;
        try
        {
            key = Base64Url.DecodeFromChars(trimmed.TrimEnd('=').Replace('+', '-').Replace('/', '_'));
        }
        catch (FormatException)
        {
            // Reported below.
        }
        if (key is null || key.Length < MinimumKeyBytes)
        {
            throw new InvalidOperationException(
                $"{source} is not a usable signing key: it must be base64 (or base64url) of at least {MinimumKeyBytes} random bytes" +
                (key is null ? "." : $"; it decodes to {key.Length} bytes.") +
                " Make one with `openssl rand -base64 32`.");
        }
        return key;
    }

    /// <summary>Mints a token for <paramref name="subject"/> with <paramref name="roles"/>, valid from now for <paramref name="lifetime"/>.</summary>
    public static string Mint(byte[] key, string subject, IEnumerable<string> roles, TimeSpan lifetime, TimeProvider time,
        string issuer = DefaultIssuer, string audience = DefaultAudience)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(subject);
        var now = time.GetUtcNow().UtcDateTime;
        var claims = new List<Claim> { new(SubjectClaim, subject) };
        claims.AddRange(roles.Select(r => new Claim(RoleClaim, r)));
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            Subject = new ClaimsIdentity(claims),
            IssuedAt = now,
            NotBefore = now,
            Expires = now + lifetime,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(key), Algorithm),
        };
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(descriptor);
    }
}
