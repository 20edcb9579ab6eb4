using System.Globalization;
using AgentLab.ServiceDefaults.Security;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Security;

/// <summary>
/// <c>dotnet run --project AgentLab.Backend -- token --sub alice [--role admin] [--lifetime 8h]</c>: prints one token
/// (and nothing else on stdout) signed with the key the Backend would use with the same configuration.
/// </summary>
public static class TokenCommand
{
    public const string Verb = "token";

    private const string Usage =
        "usage: token --sub <subject> [--role <role>]... [--lifetime <minutes | 90m | 8h | 7d>] [--Auth:SigningKey=...]";

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        string? subject = null;
        var roles = new List<string>();
        TimeSpan? lifetime = null;
        var configuration = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--sub" when i + 1 < args.Length:
                    subject = args[++i];
                    break;
                case "--role" when i + 1 < args.Length:
                    roles.Add(args[++i]);
                    break;
                case "--lifetime" when i + 1 < args.Length:
                    lifetime = ParseLifetime(args[++i]);
                    if (lifetime is null)
                    {
                        error.WriteLine($"--lifetime '{args[i]}' is not a duration; use minutes (90), or 90m, 8h, 7d. {Usage}");
                        return 2;
                    }
                    break;
                case "--help" or "-h":
                    output.WriteLine(Usage);
                    return 0;
                default:
                    if (args[i].StartsWith("--", StringComparison.Ordinal) && args[i].Contains('=', StringComparison.Ordinal))
                    {
                        configuration.Add(args[i]);   // --Auth:SigningKey=... and the like, as for the server
                        break;
                    }
                    error.WriteLine($"Unexpected argument '{args[i]}'. {Usage}");
                    return 2;
            }
        }
        if (string.IsNullOrWhiteSpace(subject) || subject.Any(char.IsControl))
        {
            error.WriteLine($"--sub is required: the subject the token speaks for (it owns what it creates). {Usage}");
            return 2;
        }

        // The same configuration sources as the server (appsettings, environment, command line), so the token fits it.
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [.. configuration] });
        builder.Services.AddOptions<AuthOptions>().BindConfiguration(AuthOptions.Section);
        builder.Services.AddSingleton<SigningKeySource>();
        using var services = builder.Services.BuildServiceProvider();
        var options = services.GetRequiredService<IOptions<AuthOptions>>().Value;
        SigningKeySource keys;
        try
        {
            keys = services.GetRequiredService<SigningKeySource>();
        }
        catch (Exception ex) when (ex is AuthConfigurationException or InvalidOperationException)
        {
            error.WriteLine($"Cannot mint a token: {ex.Message}");
            return 1;
        }
        if (keys.Key is null)
        {
            error.WriteLine($"Cannot mint a token: tokens come from {keys.Description}; ask it for one.");
            return 1;
        }

        var token = AgentLabTokens.Mint(keys.Key.Key, subject, roles, lifetime ?? TimeSpan.FromMinutes(options.MintedTokenMinutes),
            TimeProvider.System, options.Issuer, options.Audience);
        output.WriteLine(token);
        error.WriteLine($"Token for '{subject}'{(roles.Count > 0 ? $" with role(s) {string.Join(", ", roles)}" : "")}, " +
            $"valid {(lifetime ?? TimeSpan.FromMinutes(options.MintedTokenMinutes)).TotalHours:0.##} h, signed with {keys.Description}. " +
            "Send it as: Authorization: Bearer <token>");
        return 0;
    }

    private static TimeSpan? ParseLifetime(string text)
    {
        if (text.Length == 0)
            return null;
        var unit = char.ToLowerInvariant(text[^1]);
        var number = char.IsDigit(unit) ? text : text[..^1];
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value <= 0)
            return null;
        return unit switch
        {
            'm' or >= '0' and <= '9' => TimeSpan.FromMinutes(value),
            'h' => TimeSpan.FromHours(value),
            'd' => TimeSpan.FromDays(value),
            _ => null,
        };
    }
}
