using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;

namespace AgentLab.AppHost.Dashboard.Telemetry;

/// <summary>PLACEHOLDER (foundation): OTLP/HTTP protobuf on 127.0.0.1:OtlpPort, into the store.</summary>
public static class OtlpReceiver
{
    public static async Task<WebApplication> StartAsync(TelemetryStore store, DashboardOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(store);
        var builder = DashboardHosting.CreateBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{options.OtlpPort}");
        var app = builder.Build();
        await app.StartAsync(ct).ConfigureAwait(false);
        return app;
    }
}
