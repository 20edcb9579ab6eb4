using System.Security.Cryptography;
using System.Text;
using AgentLab.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace AgentLab.LabService.Security;

/// <summary>The service credential (section <c>ServiceAuth</c>): the key the Backend sends, injected by the AppHost.</summary>
public sealed class ServiceAuthOptions
{
    public const string Section = "ServiceAuth";

    /// <summary>The shared key; requests must carry <c>Authorization: Bearer &lt;key&gt;</c>. At least 32 characters.</summary>
    public string? Key { get; set; }
}

/// <summary>LabService cannot tell callers apart with its configuration; the message says what to set.</summary>
public sealed class ServiceAuthConfigurationException(string message) : Exception(message);

/// <summary>
/// LabService accepts calls only from the Backend, so nobody can go around the Backend's authentication, ownership,
/// rate limits and input limits by calling :8001 directly. Every request except the probes (<c>/health</c>,
/// <c>/alive</c>) must carry the service key the AppHost generated and gave to both services. With no key, LabService
/// runs open only in Development (and says so); anywhere else it refuses to start.
/// </summary>
public sealed class ServiceAuth
{
    private readonly byte[]? expected;

    public ServiceAuth(IOptions<ServiceAuthOptions> options, IHostEnvironment environment)
    {
        if (options.Value.Key is { Length: > 0 } key)
        {
            if (key.Trim().Length < 32)
                throw new ServiceAuthConfigurationException("ServiceAuth:Key is shorter than 32 characters; use a random key (`openssl rand -base64 32`).");
            expected = SHA256.HashData(Encoding.UTF8.GetBytes(key.Trim()));
        }
        else if (!environment.IsDevelopment())
        {
            throw new ServiceAuthConfigurationException(
                $"No service key is configured (ServiceAuth__Key) and the environment is {environment.EnvironmentName}, not Development, so " +
                "LabService would accept calls from anyone. Set ServiceAuth__Key here and the same value as LabService__ServiceKey on " +
                "the Backend (the AppHost does both).");
        }
    }

    /// <summary>False in Development with no key: every caller is let in.</summary>
    public bool IsRequired => expected is not null;

    /// <summary>Whether the request carries the service key (compared in constant time, over hashes of equal length).</summary>
    public bool IsAuthorized(HttpRequest request)
    {
        if (expected is null)
            return true;
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            return false;
        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(header["Bearer ".Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(presented, expected);
    }
}

public static class ServiceAuthExtensions
{
    public static IServiceCollection AddServiceAuth(this IServiceCollection services)
    {
        services.AddOptions<ServiceAuthOptions>().BindConfiguration(ServiceAuthOptions.Section);
        services.AddSingleton<ServiceAuth>();
        return services;
    }

    /// <summary>
    /// Resolves the credential before the host starts (throws <see cref="ServiceAuthConfigurationException"/>), then
    /// refuses, with a 401 ProblemDetails, every request without it; the probes stay open for orchestrators.
    /// </summary>
    public static WebApplication UseServiceAuth(this WebApplication app)
    {
        var auth = app.Services.GetRequiredService<ServiceAuth>();
        if (!auth.IsRequired)
            app.Logger.ServiceAuthOff();
        app.Use(async (context, next) =>
        {
            if (auth.IsAuthorized(context.Request) || HealthEndpoints.IsProbe(context.Request.Path))
            {
                await next(context);
                return;
            }
            var missing = context.Request.Headers.Authorization.Count == 0;
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await Problems.Create(StatusCodes.Status401Unauthorized,
                missing ? "service_credential_required" : "invalid_service_credential",
                "Only the AgentLab Backend may call LabService",
                (missing ? "The request has no service credential. " : "The service credential is not this LabService's. ") +
                "Call the Backend's API (port 8000) instead; it checks who you are and what you may use. A Backend configured by " +
                "hand needs LabService__ServiceKey set to this LabService's ServiceAuth__Key.").ExecuteAsync(context);
        });
        return app;
    }
}
