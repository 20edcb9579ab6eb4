using AgentLab.AppHost.Hosting;
using AgentLab.ServiceDefaults.Security;
using Microsoft.Extensions.Configuration;

namespace AgentLab.AppHost.Lab;

/// <summary>
/// The secrets the AppHost hands its services: the Backend's token signing key (<c>Auth:SigningKey</c> from the
/// AppHost's own configuration, else the development key in <c>.agentlab/dev-signing-key</c>, created on first run
/// and shared with <c>dotnet run --project AgentLab.Backend -- token</c>), a fresh service key per run that only
/// the Backend and LabService know, and a ready-to-use token for the developer.
/// </summary>
public sealed class LabCredentials
{
    /// <summary>The subject of the token printed at start.</summary>
    public const string DeveloperSubject = "dev";

    public static readonly TimeSpan DeveloperTokenLifetime = TimeSpan.FromHours(8);

    private LabCredentials(byte[] signingKey, string source)
    {
        SigningKey = signingKey;
        SigningKeySource = source;
        ServiceKey = AgentLabTokens.Encode(AgentLabTokens.NewKey());
    }

    public byte[] SigningKey { get; }

    /// <summary>Where the signing key came from (for the start-up line; never the key).</summary>
    public string SigningKeySource { get; }

    /// <summary>The Backend's credential towards LabService (<c>LabService:ServiceKey</c> / <c>ServiceAuth:Key</c>).</summary>
    public string ServiceKey { get; }

    public string EncodedSigningKey => AgentLabTokens.Encode(SigningKey);

    public static LabCredentials Create(LabAppBuilder builder)
    {
        if (builder.Configuration["Auth:SigningKey"] is { Length: > 0 } configured)
        {
            try
            {
                return new LabCredentials(AgentLabTokens.ParseKey(configured, "Auth:SigningKey"), "Auth:SigningKey");
            }
            catch (InvalidOperationException ex)
            {
                throw new LabStartupException(ex.Message);
            }
        }
        var path = Path.Combine(builder.RepositoryRoot, DevSigningKey.RelativePath);
        return new LabCredentials(DevSigningKey.LoadOrCreate(path), path);
    }

    /// <summary>A token for <paramref name="subject"/> that the Backend this AppHost starts accepts.</summary>
    public string Mint(string subject, params string[] roles) =>
        AgentLabTokens.Mint(SigningKey, subject, roles, DeveloperTokenLifetime, TimeProvider.System);
}
