using System.Net.Http.Headers;
using AgentLab.ServiceDefaults.Security;

namespace AgentLab.Bench;

/// <summary>
/// The credentials of a benchmark run: a signing key the Backends are given (<c>Auth__SigningKey</c>) and a token
/// minted with it, and the service key LabService requires (<c>ServiceAuth__Key</c>) and the Backends send
/// (<c>LabService__ServiceKey</c>). Rate limits are set far above anything a benchmark sends, so that they count every
/// request (their cost is in the figures) but never refuse one.
/// </summary>
internal static class BenchAuth
{
    public const string Subject = "bench";

    private static readonly byte[] SigningKey = AgentLabTokens.NewKey();

    public static string ServiceKey { get; } = AgentLabTokens.Encode(AgentLabTokens.NewKey());

    /// <summary>A token for <see cref="Subject"/>, valid longer than any benchmark runs.</summary>
    public static string Token { get; } = AgentLabTokens.Mint(SigningKey, Subject, [], TimeSpan.FromHours(12), TimeProvider.System);

    /// <summary><c>Authorization: Bearer {token}</c>.</summary>
    public static string Header => $"Bearer {Token}";

    /// <summary>Configuration for a Backend (as environment variables; <see cref="BackendSettings"/> for in-process ones).</summary>
    public static IReadOnlyDictionary<string, string> BackendEnvironment { get; } =
        BackendSettings.ToDictionary(s => s.Key.Replace(":", "__", StringComparison.Ordinal), s => s.Value);

    /// <summary>Configuration for a Backend: its signing key, LabService's service key, limits no benchmark reaches.</summary>
    public static IReadOnlyDictionary<string, string> BackendSettings => new Dictionary<string, string>
    {
        ["Auth:SigningKey"] = AgentLabTokens.Encode(SigningKey),
        ["LabService:ServiceKey"] = ServiceKey,
        ["RateLimits:PerSubjectPerMinute"] = "10000000",
        ["RateLimits:PerIpPerMinute"] = "10000000",
        ["RateLimits:ExecutionsPerSubjectPerMinute"] = "10000000",
        ["RateLimits:MaxConcurrentExecutionsPerSubject"] = "1000000",
    };

    /// <summary>Configuration for a LabService process: only a caller with <see cref="ServiceKey"/> gets in.</summary>
    public static IReadOnlyDictionary<string, string> LabServiceEnvironment { get; } = new Dictionary<string, string>
    {
        ["ServiceAuth__Key"] = ServiceKey,
    };

    /// <summary>Adds the token (a Backend client) to every request of <paramref name="client"/>.</summary>
    public static HttpClient WithToken(this HttpClient client)
    {
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        return client;
    }

    /// <summary>Adds the service key (a client of LabService itself, as the Backend is) to every request.</summary>
    public static HttpClient WithServiceKey(this HttpClient client)
    {
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ServiceKey);
        return client;
    }

    /// <summary><paramref name="environment"/> plus <paramref name="extra"/>.</summary>
    public static Dictionary<string, string> With(this Dictionary<string, string> environment, IReadOnlyDictionary<string, string> extra)
    {
        var all = new Dictionary<string, string>(environment);
        foreach (var (key, value) in extra)
            all[key] = value;
        return all;
    }
}
