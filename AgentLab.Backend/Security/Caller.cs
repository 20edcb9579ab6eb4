using System.Security.Claims;
using AgentLab.ServiceDefaults.Security;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Security;

/// <summary>
/// Who is calling, as the validated token says: its subject (the owner of what it creates) and whether it holds the
/// admin role (sees every subject's executions, events and graphs).
/// </summary>
public readonly record struct Caller(string Subject, bool IsAdmin)
{
    /// <summary>Whether this caller may see something owned by <paramref name="owner"/> (others get 404, not 403).</summary>
    public bool CanSee(string owner) => IsAdmin || string.Equals(owner, Subject, StringComparison.Ordinal);

    /// <summary>The owner to filter by in queries: null for an admin (everything), else the caller's subject.</summary>
    public string? OwnerFilter => IsAdmin ? null : Subject;

    public static Caller From(ClaimsPrincipal user, string adminRole)
    {
        var subject = user.FindFirst(AgentLabTokens.SubjectClaim)?.Value;
        if (string.IsNullOrEmpty(subject))
            throw new InvalidOperationException("The request reached an endpoint without an authenticated subject; the endpoint must require authorization.");
        return new Caller(subject, user.HasClaim(AgentLabTokens.RoleClaim, adminRole));
    }
}

public static class CallerExtensions
{
    /// <summary>The authenticated caller of this request.</summary>
    public static Caller Caller(this HttpContext http) =>
        Security.Caller.From(http.User, http.RequestServices.GetRequiredService<IOptions<AuthOptions>>().Value.AdminRole);
}
