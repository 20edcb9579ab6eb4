using System.Security.Claims;
using System.Text.Encodings.Web;
using AgentLab.Backend.Security;
using AgentLab.ServiceDefaults;
using AgentLab.ServiceDefaults.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Streams;

/// <summary>
/// How the two stream endpoints authenticate: a bearer token (any client that can set headers), or a stream ticket
/// in the <c>ticket</c> query parameter (browsers: neither WebSocket nor EventSource can set <c>Authorization</c>).
/// Only endpoints that ask for <see cref="Policy"/> read tickets; everywhere else a <c>ticket</c> parameter means nothing.
/// </summary>
public static class StreamTicketAuthentication
{
    /// <summary>The scheme that redeems a ticket.</summary>
    public const string TicketScheme = "StreamTicket";

    /// <summary>The scheme the stream endpoints use: the bearer scheme when an Authorization header came, else tickets.</summary>
    public const string StreamScheme = "StreamCredential";

    /// <summary>The authorization policy of the stream endpoints.</summary>
    public const string Policy = "stream";

    /// <summary>The query parameter that carries a ticket.</summary>
    public const string QueryParameter = "ticket";

    /// <summary>Marks a claim set that came from a ticket (for audit; ownership is still checked by the endpoint).</summary>
    public const string TicketClaim = "agentlab.stream_ticket";

    /// <summary>Ticket options and store, the two schemes and the policy.</summary>
    public static IServiceCollection AddStreamTickets(this IServiceCollection services)
    {
        services.AddOptions<StreamTicketOptions>().BindConfiguration(StreamTicketOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddScoped<StreamTicketStore>();
        services.AddAuthentication()
            .AddScheme<AuthenticationSchemeOptions, StreamTicketHandler>(TicketScheme, displayName: null, _ => { })
            .AddPolicyScheme(StreamScheme, displayName: null, o => o.ForwardDefaultSelector = SelectScheme);
        services.AddAuthorizationBuilder().AddPolicy(Policy, p => p.AddAuthenticationSchemes(StreamScheme).RequireAuthenticatedUser());
        return services;
    }

    /// <summary>Lets the endpoint be opened with a bearer token or a stream ticket (<c>?ticket=</c>).</summary>
    public static TBuilder RequireStreamCredential<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.RequireAuthorization(Policy);

    // A header is the stronger, explicit credential: a client that sends one is judged by it alone.
    private static string SelectScheme(HttpContext context) =>
        context.Request.Headers.Authorization.Count == 0 && context.Request.Query.ContainsKey(QueryParameter)
            ? TicketScheme
            : JwtBearerDefaults.AuthenticationScheme;
}

/// <summary>
/// Redeems the <c>ticket</c> query parameter for the execution in the route (<c>{id}</c>): one DELETE, so a ticket
/// works once, on any replica, within its lifetime. The caller it yields has the subject and admin flag the ticket
/// was minted with. A refusal is 401 <c>invalid_ticket</c>, answered before any upgrade.
/// </summary>
public sealed class StreamTicketHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder,
    StreamTicketStore tickets, IOptions<AuthOptions> auth)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var values = Request.Query[StreamTicketAuthentication.QueryParameter];
        if (values.Count == 0)
            return AuthenticateResult.NoResult();
        // The failure message is logged by the framework: it must never hold the ticket.
        if (values.Count != 1 || values[0] is not { Length: > 0 } ticket
            || !Guid.TryParse(Context.GetRouteValue("id") as string, out var executionId)
            || await tickets.RedeemAsync(ticket, executionId, Context.RequestAborted) is not { } holder)
        {
            Logger.StreamTicketRefused(Request.Path.Value ?? "");
            return AuthenticateResult.Fail("The stream ticket is unknown, expired, already used, or for another execution.");
        }

        var claims = new List<Claim>
        {
            new(AgentLabTokens.SubjectClaim, holder.Subject),
            new(StreamTicketAuthentication.TicketClaim, holder.ExecutionId.ToString()),
        };
        if (holder.IsAdmin)
            claims.Add(new(AgentLabTokens.RoleClaim, auth.Value.AdminRole));
        var identity = new ClaimsIdentity(claims, Scheme.Name, AgentLabTokens.SubjectClaim, AgentLabTokens.RoleClaim);
        Logger.StreamTicketRedeemed(holder.Subject, executionId);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme.Name));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.Headers.WWWAuthenticate = $"{StreamTicketAuthentication.TicketScheme} error=\"invalid_ticket\"";
        await Problems.Create(StatusCodes.Status401Unauthorized, "invalid_ticket", "The stream ticket is not valid",
            "Stream tickets work once, for the execution they were minted for, within Streams:TicketSeconds (30 s by default). " +
            "Mint a new one with POST /api/v1/stream-tickets {\"execution_id\": \"...\"} (bearer token) and reconnect with it " +
            "and last_event_id=<the last seq you received>, so the stream resumes where it stopped.").ExecuteAsync(Context);
    }
}
