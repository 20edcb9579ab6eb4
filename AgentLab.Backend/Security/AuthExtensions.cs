using AgentLab.ServiceDefaults;
using AgentLab.ServiceDefaults.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace AgentLab.Backend.Security;

/// <summary>
/// JWT bearer authentication on every endpoint (health, readiness and the API documents excepted, with
/// <c>AllowAnonymous</c>): signature, issuer, audience and lifetime validated, the algorithm pinned, clock skew at
/// most 30 s. A missing or bad token gets a 401 ProblemDetails with a stable code and no echo of the token.
/// </summary>
public static class AuthExtensions
{
    /// <summary>Algorithms accepted from an OIDC authority (asymmetric only: an HS256 token would need its key).</summary>
    private static readonly string[] AuthorityAlgorithms =
        [SecurityAlgorithms.RsaSha256, SecurityAlgorithms.RsaSsaPssSha256, SecurityAlgorithms.EcdsaSha256];

    public static IServiceCollection AddAgentLabAuth(this IServiceCollection services)
    {
        services.AddOptions<AuthOptions>().BindConfiguration(AuthOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<SigningKeySource>();

        services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme).AddJwtBearer();
        services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme)
            .Configure<IOptions<AuthOptions>, SigningKeySource>((jwt, options, keys) => Configure(jwt, options.Value, keys));

        // Everything requires an authenticated caller unless its endpoint says AllowAnonymous.
        services.AddAuthorizationBuilder()
            .SetFallbackPolicy(new AuthorizationPolicyBuilder(JwtBearerDefaults.AuthenticationScheme).RequireAuthenticatedUser().Build());
        return services;
    }

    /// <summary>
    /// Resolves the signing key once, before the host starts; a Backend with no key outside Development stops here
    /// with <see cref="AuthConfigurationException"/>.
    /// </summary>
    public static void EnsureAuthConfigured(this WebApplication app)
    {
        var keys = app.Services.GetRequiredService<SigningKeySource>();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(AuthExtensions).FullName!);
        logger.AuthenticationConfigured(keys.Description);
        if (keys.IsDevelopmentKey)
            logger.DevelopmentKeyInUse();
    }

    private static void Configure(JwtBearerOptions jwt, AuthOptions options, SigningKeySource keys)
    {
        jwt.MapInboundClaims = false;               // "sub" and "role" stay as they are in the token
        jwt.SaveToken = false;                      // nothing downstream needs the raw token; keep it out of memory
        jwt.IncludeErrorDetails = true;             // WWW-Authenticate says why (expired, bad signature), never the token
        jwt.RequireHttpsMetadata = options.RequireHttpsMetadata;
        var parameters = new TokenValidationParameters
        {
            ValidateIssuer = true,
            ValidIssuer = options.Issuer,
            ValidateAudience = true,
            ValidAudience = options.Audience,
            ValidateLifetime = true,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ValidateIssuerSigningKey = true,
            ClockSkew = TimeSpan.FromSeconds(options.ClockSkewSeconds),
            NameClaimType = AgentLabTokens.SubjectClaim,
            RoleClaimType = AgentLabTokens.RoleClaim,
        };
        if (keys.Key is { } key)
        {
            parameters.IssuerSigningKey = key;
            parameters.ValidAlgorithms = [AgentLabTokens.Algorithm];
        }
        else
        {
            jwt.Authority = options.Authority;
            parameters.ValidAlgorithms = AuthorityAlgorithms;
        }
        jwt.TokenValidationParameters = parameters;
        jwt.Events = new JwtBearerEvents
        {
            OnChallenge = ChallengeAsync,
            OnForbidden = ForbiddenAsync,
        };
    }

    private static async Task ChallengeAsync(JwtBearerChallengeContext context)
    {
        context.HandleResponse();
        var (code, detail) = Describe(context.AuthenticateFailure, context.Request.Headers.Authorization.Count > 0);
        context.Response.Headers.WWWAuthenticate = context.AuthenticateFailure is null
            ? "Bearer"
            : $"Bearer error=\"invalid_token\", error_description=\"{detail.Replace("\"", "'", StringComparison.Ordinal)}\"";
        await Problems.Create(StatusCodes.Status401Unauthorized, code, "Authentication required", detail).ExecuteAsync(context.HttpContext);
    }

    private static Task ForbiddenAsync(ForbiddenContext context) =>
        Problems.Create(StatusCodes.Status403Forbidden, "forbidden", "Not allowed",
            "The token is valid but does not grant this operation.").ExecuteAsync(context.HttpContext);

    /// <summary>A stable code and a sentence for why the token was refused; the token itself never appears.</summary>
    internal static (string Code, string Detail) Describe(Exception? failure, bool hadAuthorizationHeader) => failure switch
    {
        null when !hadAuthorizationHeader => ("unauthorized",
            "Send a bearer token: Authorization: Bearer <token>. For local use, the AppHost prints one at start, and " +
            "`dotnet run --project AgentLab.Backend -- token --sub <you>` mints more. Browsers open streams with a ticket from POST /api/v1/stream-tickets."),
        null => ("invalid_token", "The Authorization header is not a bearer token."),
        SecurityTokenExpiredException => ("token_expired", "The token has expired; get a new one."),
        SecurityTokenNotYetValidException => ("token_not_yet_valid", "The token is not valid yet (nbf is in the future)."),
        SecurityTokenInvalidAudienceException => ("invalid_token", "The token was issued for another audience."),
        SecurityTokenInvalidIssuerException => ("invalid_token", "The token was issued by an issuer this Backend does not trust."),
        SecurityTokenInvalidAlgorithmException => ("invalid_token", "The token is signed with an algorithm this Backend does not accept."),
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException =>
            ("invalid_token", "The token's signature does not verify with this Backend's key."),
        SecurityTokenNoExpirationException => ("invalid_token", "The token has no expiry (exp); only tokens that expire are accepted."),
        _ => ("invalid_token", "The token could not be validated."),
    };
}
