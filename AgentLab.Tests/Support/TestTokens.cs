using AgentLab.ServiceDefaults.Security;

namespace AgentLab.Tests.Support;

/// <summary>
/// The signing key every test Backend is given (<see cref="Settings"/>, or <see cref="Environment"/> for a Backend
/// process), and tokens signed with it.
/// </summary>
public static class TestTokens
{
    /// <summary>The subject of the default test client.</summary>
    public const string DefaultSubject = "test-user";

    public static readonly byte[] Key = AgentLabTokens.NewKey();

    public static string EncodedKey { get; } = AgentLabTokens.Encode(Key);

    /// <summary>Configuration for an in-memory Backend (WebApplicationFactory).</summary>
    public static IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>
    {
        ["Auth:SigningKey"] = EncodedKey,
    };

    /// <summary>The service key test LabService processes require and test Backend processes send.</summary>
    public static string ServiceKey { get; } = AgentLabTokens.Encode(AgentLabTokens.NewKey());

    /// <summary>Environment for a Backend process (its signing key, and LabService's service key).</summary>
    public static IReadOnlyDictionary<string, string> Environment { get; } = new Dictionary<string, string>
    {
        ["Auth__SigningKey"] = EncodedKey,
        ["LabService__ServiceKey"] = ServiceKey,
    };

    /// <summary>Environment for a LabService process: only a caller with <see cref="ServiceKey"/> gets in.</summary>
    public static IReadOnlyDictionary<string, string> LabServiceEnvironment { get; } = new Dictionary<string, string>
    {
        ["ServiceAuth__Key"] = ServiceKey,
    };

    /// <summary>A valid token for <paramref name="subject"/> (one hour).</summary>
    public static string For(string subject = DefaultSubject, params string[] roles) =>
        AgentLabTokens.Mint(Key, subject, roles, TimeSpan.FromHours(1), TimeProvider.System);

    /// <summary>A valid token with the admin role.</summary>
    public static string Admin(string subject = "test-admin") => For(subject, AgentLabTokens.AdminRole);

    /// <summary>The header value for <paramref name="subject"/>: <c>Bearer ...</c>.</summary>
    public static string Header(string subject = DefaultSubject, params string[] roles) => $"Bearer {For(subject, roles)}";

    /// <summary>A WebSocket client that sends <c>Authorization: Bearer</c> for <paramref name="subject"/> (as a non-browser client can).</summary>
    public static System.Net.WebSockets.ClientWebSocket Socket(string subject = DefaultSubject)
    {
        var socket = new System.Net.WebSockets.ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", Header(subject));
        return socket;
    }

    /// <summary>The TestServer WebSocket client of <paramref name="server"/>, sending the default subject's token.</summary>
    public static Microsoft.AspNetCore.TestHost.WebSocketClient WebSockets(Microsoft.AspNetCore.TestHost.TestServer server, string subject = DefaultSubject)
    {
        var client = server.CreateWebSocketClient();
        var header = Header(subject);
        client.ConfigureRequest = request => request.Headers.Authorization = header;
        return client;
    }

    /// <summary>Adds <c>Authorization: Bearer</c> for <paramref name="subject"/> to every request of <paramref name="client"/>.</summary>
    public static HttpClient As(this HttpClient client, string subject = DefaultSubject, params string[] roles)
    {
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", For(subject, roles));
        return client;
    }
}
