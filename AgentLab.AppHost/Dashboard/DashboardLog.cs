using Microsoft.Extensions.Logging;

namespace AgentLab.AppHost.Dashboard;

/// <summary>The dashboard web app's log lines (ids 3021–3039). Never a token, never a cookie value.</summary>
internal static partial class Log
{
    [LoggerMessage(3021, LogLevel.Warning, "Dashboard: a sign-in from {RemoteAddress} gave a wrong access token")]
    public static partial void DashboardLoginRejected(this ILogger logger, string remoteAddress);

    [LoggerMessage(3022, LogLevel.Error, "Dashboard: {Action} of {Resource} failed after it was accepted")]
    public static partial void DashboardActionFailed(this ILogger logger, Exception exception, string action, string resource);
}
