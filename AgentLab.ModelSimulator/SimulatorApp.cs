using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace AgentLab.ModelSimulator;

/// <summary>Builds the simulator app; Program.cs and <see cref="SimulatorHost"/> both use it, so both run the same app.</summary>
public static class SimulatorApp
{
    public static WebApplication Create(string[] args, Action<SimulatorOptions>? configure = null) =>
        Create(args, configure, isolated: false);

    /// <param name="isolated">
    /// In-process hosts ignore appsettings and environment variables of the process they run in (a test project's
    /// output folder holds other services' appsettings.json, whose Kestrel endpoints would override the port).
    /// </param>
    internal static WebApplication Create(string[] args, Action<SimulatorOptions>? configure, bool isolated)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            ApplicationName = typeof(SimulatorApp).Assembly.GetName().Name,
        });
        if (isolated)
        {
            builder.Configuration.Sources.Clear();
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Logging:LogLevel:Default"] = "Warning",
            });
            builder.Configuration.AddCommandLine(args);
        }

        var options = builder.Services.AddOptions<SimulatorOptions>().BindConfiguration(SimulatorOptions.Section);
        if (configure is not null)
            options.Configure(configure);
        options.ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<SimulatorOptions>, SimulatorOptionsValidator>();
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<ModelRegistry>();

        var app = builder.Build();
        app.Use(StampAndGuardAsync);
        app.MapOllamaApi();
        app.Lifetime.ApplicationStarted.Register(() => AnnounceItself(app));
        return app;
    }

    /// <summary>Marks every response as the simulator's and treats a vanished client as normal, not as an error.</summary>
    private static async Task StampAndGuardAsync(HttpContext http, RequestDelegate next)
    {
        // Real Ollama sends no such header; LabService uses it to report "model_server": "simulator".
        http.Response.Headers[OllamaApi.ServerHeader] = OllamaApi.ServerHeaderValue;
        try
        {
            await next(http);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
        }
    }

    private static void AnnounceItself(WebApplication app)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var models = app.Services.GetRequiredService<ModelRegistry>().Tags().Models.Select(m => m.Name);
        app.Logger.SimulatorStarted(string.Join(", ", addresses), string.Join(", ", models));
    }
}
