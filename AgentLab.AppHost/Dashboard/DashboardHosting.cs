using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace AgentLab.AppHost.Dashboard;

/// <summary>How the dashboard's web apps (the pages and the OTLP receiver) are built.</summary>
public static class DashboardHosting
{
    /// <summary>A name nobody listens to (ServiceDefaults listens to "AgentLab.*", tests to "Microsoft.AspNetCore").</summary>
    public const string UnobservedSourceName = "agentlab-dashboard-unobserved";

    /// <summary>
    /// A slim builder whose requests make no spans anyone records, with a quiet log. The AppHost runs no
    /// OpenTelemetry, but the test host runs it inside the test process, where services' tracer providers listen to
    /// "Microsoft.AspNetCore" process-wide: without this, every OTLP export and every page view would show up as a span
    /// of whichever in-process service happens to listen (and could be exported back into the receiver).
    /// </summary>
    public static WebApplicationBuilder CreateBuilder()
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            // Content root and static files are ours to set; never the caller's working directory.
            ContentRootPath = AppContext.BaseDirectory,
        });
        // Hosting resolves these from DI (registered with TryAdd while the builder was created): replace them.
        builder.Services.Replace(ServiceDescriptor.Singleton(new ActivitySource(UnobservedSourceName)));
        builder.Services.Replace(ServiceDescriptor.Singleton(new DiagnosticListener(UnobservedSourceName)));
        builder.Services.Replace(ServiceDescriptor.Singleton<DiagnosticSource>(sp => sp.GetRequiredService<DiagnosticListener>()));
        // The AppHost's console is for the lab's lines: the dashboard speaks only when something is wrong.
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        // An appsettings.json in the output folder (a service's, copied by the project references) would turn
        // Microsoft.Hosting.Lifetime back to Information: its rules are dropped, after the configuration applied them.
        builder.Services.Configure<LoggerFilterOptions>(filters => filters.Rules.Clear());
        return builder;
    }
}
