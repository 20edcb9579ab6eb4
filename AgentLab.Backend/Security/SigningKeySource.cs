using AgentLab.ServiceDefaults.Security;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace AgentLab.Backend.Security;

/// <summary>The Backend cannot authenticate anyone with its configuration; the message says what to set.</summary>
public sealed class AuthConfigurationException(string message) : Exception(message);

/// <summary>
/// Where the Backend's token keys come from, decided once at start: <c>Auth:SigningKey</c>, <c>Auth:SigningKeyFile</c>,
/// <c>Auth:Authority</c>, or (in Development only) the shared development key file. With none of them outside
/// Development it throws <see cref="AuthConfigurationException"/>: the Backend must never run open.
/// </summary>
public sealed class SigningKeySource
{
    public SigningKeySource(IOptions<AuthOptions> options, IHostEnvironment environment)
    {
        var auth = options.Value;
        if (auth.SigningKey is { Length: > 0 } configured)
        {
            Key = Symmetric(Parse(configured, "Auth:SigningKey"));
            Description = "the symmetric key in Auth:SigningKey";
        }
        else if (auth.SigningKeyFile is { Length: > 0 } file)
        {
            if (!File.Exists(file))
                throw new AuthConfigurationException($"Auth:SigningKeyFile points at {file}, which does not exist.");
            Key = Symmetric(Parse(File.ReadAllText(file), file));
            Description = $"the symmetric key in {file}";
        }
        else if (auth.Authority is { Length: > 0 } authority)
        {
            Description = $"the OIDC authority {authority}";
        }
        else if (environment.IsDevelopment())
        {
            var path = DevSigningKey.DefaultPath(environment.ContentRootPath);
            Key = Symmetric(DevSigningKey.LoadOrCreate(path));
            Description = $"the development key in {path}";
            IsDevelopmentKey = true;
        }
        else
        {
            throw new AuthConfigurationException(
                $"No token signing key is configured, and the environment is {environment.EnvironmentName}, not Development, " +
                "so the Backend will not start without authentication. Set one of: Auth__SigningKey (base64 of 32+ random " +
                "bytes, e.g. `openssl rand -base64 32`), Auth__SigningKeyFile (a file holding such a key) or Auth__Authority " +
                "(your OIDC issuer's URL). The AppHost sets one for you.");
        }
    }

    /// <summary>The HS256 key, or null when keys come from an authority.</summary>
    public SymmetricSecurityKey? Key { get; }

    /// <summary>For the start-up log: which key this is (never the key itself).</summary>
    public string Description { get; }

    public bool IsDevelopmentKey { get; }

    private static SymmetricSecurityKey Symmetric(byte[] key) => new(key) { KeyId = "agentlab" };

    // A key that is too short or not base64 is a configuration error like a missing one: Program.cs prints the
    // sentence and exits 1, instead of an unhandled-exception stack trace.
    private static byte[] Parse(string text, string source)
    {
        try
        {
            return AgentLabTokens.ParseKey(text, source);
        }
        catch (InvalidOperationException ex)
        {
            throw new AuthConfigurationException(ex.Message);
        }
    }
}
