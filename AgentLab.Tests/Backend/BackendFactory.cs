using AgentLab.Backend;
using AgentLab.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AgentLab.Tests.Backend;

/// <summary>
/// The Backend in memory, with its LabService pointed at <paramref name="labBaseAddress"/> and its database at
/// <paramref name="connectionString"/> (a real PostgreSQL database, see <see cref="Support.SharedPostgres"/>).
/// </summary>
public sealed class BackendFactory(Uri labBaseAddress, string connectionString, IReadOnlyDictionary<string, string?>? settings = null)
    : WebApplicationFactory<BackendMarker>
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        var all = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase)
        {
            ["LabService:BaseAddress"] = labBaseAddress.ToString(),
            ["LabService:HealthTimeoutSeconds"] = "2",
            ["ConnectionStrings:agentlabdb"] = connectionString,
            // Tests seed old rows on purpose; the retention job would delete them behind the test's back.
            ["Retention:Enabled"] = "false",
            // Tests share one Redis and the subject test-user, and many poll: each Backend counts under its own Redis
            // prefix, with limits no test reaches by accident (RateLimitTests sets small ones).
            ["RateLimits:RedisKeyPrefix"] = $"test:{Guid.NewGuid():N}",
            ["RateLimits:PerSubjectPerMinute"] = "1000000",
            ["RateLimits:PerIpPerMinute"] = "1000000",
            ["RateLimits:ExecutionsPerSubjectPerMinute"] = "1000000",
            ["RateLimits:MaxConcurrentExecutionsPerSubject"] = "100000",
        };
        foreach (var (key, value) in Support.TestTokens.Settings)
            all[key] = value;
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            all[key] = value;

        builder.ConfigureAppConfiguration((_, config) => config.AddInMemoryCollection(all));
        builder.ConfigureLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
    }

    /// <summary>Every client speaks for <see cref="Support.TestTokens.DefaultSubject"/> unless a test sets another token.</summary>
    protected override void ConfigureClient(HttpClient client)
    {
        base.ConfigureClient(client);
        client.As();
    }

    /// <summary>A client that speaks for <paramref name="subject"/> with <paramref name="roles"/>.</summary>
    public HttpClient CreateClientFor(string subject, params string[] roles) => CreateClient().As(subject, roles);

    /// <summary>A client with no Authorization header.</summary>
    public HttpClient CreateAnonymousClient()
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = null;
        return client;
    }
}
