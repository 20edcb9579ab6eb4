namespace AgentLab.LabService.Security;

/// <summary>The service credential's log messages (event ids 2500–2509). The key never appears in them.</summary>
internal static partial class ServiceAuthLog
{
    [LoggerMessage(2500, LogLevel.Warning,
        "No ServiceAuth:Key is set: LabService accepts calls from anyone (allowed in Development only). The AppHost sets one; by hand, set ServiceAuth__Key here and LabService__ServiceKey on the Backend")]
    public static partial void ServiceAuthOff(this ILogger logger);
}
