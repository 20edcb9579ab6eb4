using System.Security.Cryptography;
using System.Text;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AgentLab.AppHost.Dashboard;

/// <summary>
/// Who may use the dashboard, and how its responses defend the browser. In this order, for every request:
/// security headers; the Host check when bound to loopback (DNS rebinding); the access token when one is configured
/// (<c>/login?t=</c> sets a cookie, or <c>Authorization: Bearer</c>); the <c>X-AgentLab-Dashboard: 1</c> header on
/// anything but GET/HEAD (a cross-site form or image cannot set it). The token is never logged, shown or put in the cookie.
/// </summary>
public static class DashboardAccess
{
    public const string CookieName = "agentlab_dashboard";
    public const string CsrfHeader = "X-AgentLab-Dashboard";
    public const string LoginPath = "/login";

    public const string ContentSecurityPolicy =
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

    private static readonly string[] LoopbackHosts = ["localhost", "127.0.0.1", "[::1]", "::1"];

    /// <summary>Installs the checks; call before static files and endpoints.</summary>
    public static WebApplication UseDashboardAccess(this WebApplication app, DashboardOptions options)
    {
        var secret = string.IsNullOrEmpty(options.AccessToken) ? null : new AccessSecret(options.AccessToken);
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(DashboardAccess).FullName!);
        var checkHost = options.IsLoopback;
        app.Use((context, next) => CheckAsync(context, next, checkHost, secret, logger));
        return app;
    }

    private static async Task CheckAsync(HttpContext context, RequestDelegate next, bool checkHost, AccessSecret? secret, ILogger logger)
    {
        var request = context.Request;
        var headers = context.Response.Headers;
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        headers.ContentSecurityPolicy = ContentSecurityPolicy;

        if (checkHost && !IsLoopbackHost(request.Host))
        {
            // A page on another site whose name was re-pointed at 127.0.0.1 sends its own name here.
            await Problems.Create(StatusCodes.Status400BadRequest, "host_not_allowed", "Host not allowed",
                "The dashboard listens on loopback and answers only to localhost, 127.0.0.1 or [::1]. Open it as http://localhost:<port>/.")
                .ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        if (secret is not null)
        {
            if (request.Path.Equals(LoginPath, StringComparison.OrdinalIgnoreCase))
            {
                await LoginAsync(context, secret, logger).ConfigureAwait(false);
                return;
            }
            if (!IsSignedIn(request, secret))
            {
                if (request.Path.StartsWithSegments("/api", StringComparison.OrdinalIgnoreCase))
                {
                    headers.WWWAuthenticate = "Bearer";
                    await Problems.Create(StatusCodes.Status401Unauthorized, "dashboard_token_required", "Access token required",
                        "This dashboard requires its access token: open /login?t=<token> once in the browser (a cookie follows), " +
                        "or send Authorization: Bearer <token>. The token is Dashboard:AccessToken in the AppHost's configuration.")
                        .ExecuteAsync(context).ConfigureAwait(false);
                    return;
                }
                context.Response.Redirect(LoginPath);
                return;
            }
        }
        else if (request.Path.Equals(LoginPath, StringComparison.OrdinalIgnoreCase))
        {
            context.Response.Redirect("/"); // no token configured: nothing to sign in to
            return;
        }

        if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method)
            && request.Headers[CsrfHeader] != "1")
        {
            await Problems.Create(StatusCodes.Status403Forbidden, "dashboard_header_required", "Header required",
                $"Actions must send the header {CsrfHeader}: 1 (the dashboard's page does; a form on another site cannot).")
                .ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        await next(context).ConfigureAwait(false);
    }

    private static bool IsLoopbackHost(HostString host) =>
        host.HasValue && LoopbackHosts.Contains(host.Host, StringComparer.OrdinalIgnoreCase);

    private static bool IsSignedIn(HttpRequest request, AccessSecret secret)
    {
        if (request.Cookies.TryGetValue(CookieName, out var cookie) && secret.IsCookie(cookie))
            return true;
        var authorization = request.Headers.Authorization.ToString();
        return authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            && secret.IsToken(authorization["Bearer ".Length..].Trim());
    }

    /// <summary><c>GET /login</c>: the form; <c>GET /login?t=</c>: the cookie and back to the page, or 401 and the form again.</summary>
    private static async Task LoginAsync(HttpContext context, AccessSecret secret, ILogger logger)
    {
        var response = context.Response;
        response.Headers.CacheControl = "no-store";
        if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method))
        {
            response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            return;
        }
        if (!context.Request.Query.TryGetValue("t", out var given))
        {
            await WriteLoginPageAsync(response, StatusCodes.Status200OK, null).ConfigureAwait(false);
            return;
        }
        if (!secret.IsToken(given.ToString()))
        {
            logger.DashboardLoginRejected(context.Connection.RemoteIpAddress?.ToString() ?? "unknown");
            await WriteLoginPageAsync(response, StatusCodes.Status401Unauthorized, "That is not the dashboard's access token.").ConfigureAwait(false);
            return;
        }
        response.Cookies.Append(CookieName, secret.CookieValue, new CookieOptions
        {
            HttpOnly = true,
            SameSite = SameSiteMode.Strict,
            Path = "/",
            Secure = context.Request.IsHttps,
            IsEssential = true,
        });
        // Off the URL with the token in it (history, screenshots).
        response.Redirect("/");
    }

    private static async Task WriteLoginPageAsync(HttpResponse response, int status, string? error)
    {
        response.StatusCode = status;
        response.ContentType = "text/html; charset=utf-8";
        // Static text only (no request data is echoed); no inline script or style, so the CSP holds here too.
        var message = error is null ? "" : $"<p><strong>{error}</strong></p>\n";
        await response.WriteAsync($"""
            <!doctype html>
            <html lang="en">
            <head><meta charset="utf-8"><title>AgentLab dashboard: sign in</title></head>
            <body>
            <h1>AgentLab dashboard</h1>
            <p>This dashboard asks for its access token (<code>Dashboard:AccessToken</code> in the AppHost's configuration).</p>
            {message}<form method="get" action="/login">
            <label>Access token <input type="password" name="t" autocomplete="current-password" required autofocus></label>
            <button type="submit">Sign in</button>
            </form>
            </body>
            </html>
            """).ConfigureAwait(false);
    }

    /// <summary>The token, kept only as hashes; the cookie carries a value derived from it, not the token.</summary>
    private sealed class AccessSecret
    {
        private readonly HashedSecret _token;
        private readonly HashedSecret _cookie;

        public AccessSecret(string token)
        {
            _token = new HashedSecret(token);
            CookieValue = Convert.ToBase64String(HMACSHA256.HashData(Encoding.UTF8.GetBytes(token), "agentlab-dashboard-cookie-v1"u8))
                .TrimEnd('=').Replace('+', '-').Replace('/', '_');
            _cookie = new HashedSecret(CookieValue);
        }

        public string CookieValue { get; }

        public bool IsToken(string candidate) => _token.Matches(candidate);

        public bool IsCookie(string candidate) => _cookie.Matches(candidate);
    }
}
