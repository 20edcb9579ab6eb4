using System.Text.RegularExpressions;

namespace AgentLab.AppHost.Hosting;

/// <summary>What the AppHost shows of text that may quote a connection string (the status table, the dashboard).</summary>
internal static partial class Secrets
{
    /// <summary><paramref name="text"/> with every <c>Password=</c> / <c>Pwd=</c> value replaced by <c>***</c>.</summary>
    public static string RedactPasswords(string text) => PasswordPattern().Replace(text, "$1=***");

    [GeneratedRegex(@"(?i)\b(password|pwd)\s*=\s*[^;\s)]*")]
    private static partial Regex PasswordPattern();
}
