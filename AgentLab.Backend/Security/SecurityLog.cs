namespace AgentLab.Backend.Security;

/// <summary>Authentication's log messages (event ids 1800–1809). A token, ticket or key never appears in them.</summary>
internal static partial class SecurityLog
{
    [LoggerMessage(1800, LogLevel.Information, "Authentication: bearer tokens are validated with {KeySource}")]
    public static partial void AuthenticationConfigured(this ILogger logger, string keySource);

    [LoggerMessage(1801, LogLevel.Warning,
        "Development key in use: mint a token with `dotnet run --project AgentLab.Backend -- token --sub <you>`; outside Development set Auth__SigningKey or Auth__Authority")]
    public static partial void DevelopmentKeyInUse(this ILogger logger);
}
