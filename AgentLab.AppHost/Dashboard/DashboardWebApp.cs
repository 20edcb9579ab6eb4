using AgentLab.AppHost.Dashboard.Telemetry;
using AgentLab.AppHost.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace AgentLab.AppHost.Dashboard;

/// <summary>PLACEHOLDER (foundation): the dashboard's web app (pages, resources API, console logs, telemetry API).</summary>
public static class DashboardWebApp
{
    public static async Task<WebApplication> StartAsync(LabApp lab, TelemetryStore telemetry, DashboardOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(lab);
        var builder = DashboardHosting.CreateBuilder();
        builder.Services.AddSingleton(telemetry);
        builder.WebHost.UseUrls($"http://127.0.0.1:{options.Port}");
        var app = builder.Build();
        app.MapTelemetryApi();
        await app.StartAsync(ct).ConfigureAwait(false);
        return app;
    }
}
