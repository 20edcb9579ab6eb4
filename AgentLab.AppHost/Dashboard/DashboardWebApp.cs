using System.Net;
using AgentLab.AppHost.Dashboard.Telemetry;
using AgentLab.AppHost.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.FileProviders;

namespace AgentLab.AppHost.Dashboard;

/// <summary>
/// The dashboard's web app: the pages (static files), the resources API with its actions, console logs, and the
/// telemetry API, behind <see cref="DashboardAccess"/> (Host check, token, CSRF header, security headers).
/// </summary>
public static class DashboardWebApp
{
    /// <summary>Where the AppHost's build copies <c>Dashboard/wwwroot</c> (the test project's output gets it too).</summary>
    public static string AssetsRoot { get; } = Path.Combine(AppContext.BaseDirectory, "Dashboard", "wwwroot");

    public static async Task<WebApplication> StartAsync(LabApp lab, TelemetryStore telemetry, DashboardOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(lab);
        ArgumentNullException.ThrowIfNull(options);
        var address = ListenAddress(options);
        var builder = DashboardHosting.CreateBuilder();
        builder.Services.AddSingleton(telemetry);
        builder.Services.AddSingleton(lab);
        builder.Services.AddSingleton(options);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(address, options.Port);
            kestrel.AddServerHeader = false;
            // Nothing here takes a body; a few hundred connections is far more than a few open tabs with live tails.
            kestrel.Limits.MaxRequestBodySize = 64 * 1024;
            kestrel.Limits.MaxConcurrentConnections = 256;
        });

        var app = builder.Build();
        app.UseDashboardAccess(options);
        if (Directory.Exists(AssetsRoot))
        {
            var files = new PhysicalFileProvider(AssetsRoot);
            app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
            app.UseStaticFiles(new StaticFileOptions
            {
                FileProvider = files,
                ContentTypeProvider = new FileExtensionContentTypeProvider(),
                // One page that changes with every build: always revalidate (ETag/Last-Modified make that cheap).
                OnPrepareResponse = context => context.Context.Response.Headers.CacheControl = "no-cache",
            });
        }
        // Routing after the static files: "/" below answers only when index.html was not there to serve.
        app.UseRouting();
        app.MapGet("/", AssetsMissing);
        app.MapResourcesApi();
        app.MapConsoleApi();
        app.MapTelemetryApi();
        await app.StartAsync(ct).ConfigureAwait(false);
        return app;
    }

    /// <summary>Reached only when the page itself is missing: say so instead of a bare 404.</summary>
    public static IResult AssetsMissing() => TypedResults.Text(
        $"dashboard_assets_missing: the dashboard's pages are not in {AssetsRoot}. Rebuild the AppHost " +
        "(`dotnet build AgentLab.AppHost`), which copies Dashboard/wwwroot to its output folder; the API under /api works meanwhile.",
        "text/plain; charset=utf-8", statusCode: StatusCodes.Status503ServiceUnavailable);

    /// <summary>The configured address as an IP address ("localhost" is IPv4 loopback).</summary>
    internal static IPAddress ListenAddress(DashboardOptions options)
    {
        if (string.Equals(options.Address, "localhost", StringComparison.OrdinalIgnoreCase))
            return IPAddress.Loopback;
        return IPAddress.TryParse(options.Address, out var ip)
            ? ip
            : throw new LabStartupException(
                $"Dashboard:Address '{options.Address}' is not an IP address: use 127.0.0.1 (the default), " +
                "0.0.0.0 (every interface, with Dashboard:AccessToken) or one of this machine's addresses.");
    }
}
