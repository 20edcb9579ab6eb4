using AgentLab.Backend;
using AgentLab.LabService;
using AgentLab.ModelSimulator;
using AgentLab.Tests.ServiceDefaults;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

using AgentLab.Tests.Support;

namespace AgentLab.Tests.EndToEnd;

/// <summary>
/// The simple path inside the test process, every hop on a real loopback socket: the Ollama-protocol simulator,
/// LabService pointed at it through <c>ConnectionStrings:ollama</c>, and the Backend finding LabService through
/// service discovery (<c>services:labservice:http:0</c>, with <c>LabService:BaseAddress</c> left at
/// <c>http://labservice</c>). One per test class (IClassFixture), or per test when a test stops a part of it.
/// </summary>
public sealed class LabStack : IAsyncLifetime
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    /// <summary>A model whose stream breaks with Ollama's mid-stream error line after three tokens.</summary>
    public const string BrokenModel = "broken:7b";

    /// <summary>A model the simulator always refuses with Ollama's "queue full" 503.</summary>
    public const string BusyModel = "busy:7b";

    /// <summary>A model that sends three tokens and then nothing, until the caller gives up.</summary>
    public const string StuckModel = "stuck:7b";

    /// <summary>A model slow enough (per token) that a generation is still running when the client leaves.</summary>
    public const string SlowModel = "slow:7b";

    /// <summary>LabService's idle-gap limit: what ends a call to <see cref="StuckModel"/>.</summary>
    public const double IdleTimeoutSeconds = 1;

    private WebApplicationFactory<LabServiceMarker>? lab;
    private WebApplicationFactory<BackendMarker>? backend;

    public SimulatorHost Simulator { get; private set; } = null!;

    /// <summary>LabService's real address (what <c>services:labservice:http:0</c> is set to).</summary>
    public Uri LabAddress { get; private set; } = null!;

    /// <summary>Every log LabService writes, with the scopes it was written in.</summary>
    internal RecordingLoggerProvider LabLogs { get; } = new();

    /// <summary>A client of the Backend over its real socket.</summary>
    public HttpClient Backend { get; private set; } = null!;

    public bool SimulatorStopped { get; private set; }

    /// <summary>The Backend's database (its own, on the shared PostgreSQL server).</summary>
    public Support.TestDatabase Database { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        var ct = TestContext.Current.CancellationToken;
        Simulator = await SimulatorHost.StartAsync(SimulatorOptions(), ct).WaitAsync(Bound, ct);

        lab = new ServiceFactory<LabServiceMarker>(new()
        {
            ["ConnectionStrings:ollama"] = $"Endpoint={Simulator.BaseAddress}",
            ["Ollama:ConnectTimeoutSeconds"] = "2",
            ["Ollama:FirstTokenTimeoutSeconds"] = "5",
            ["Ollama:IdleTimeoutSeconds"] = IdleTimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Ollama:TotalTimeoutSeconds"] = "30",
        }, LabLogs);
        lab.UseKestrel();
        lab.StartServer();
        LabAddress = AddressOf(lab.Services);

        Database = await Support.SharedPostgres.CreateDatabaseAsync(ct);
        backend = new ServiceFactory<BackendMarker>(new()
        {
            ["ConnectionStrings:agentlabdb"] = Database.ConnectionString,
            // Aspire's convention; LabService:BaseAddress stays at its default http://labservice.
            ["services:labservice:http:0"] = LabAddress.ToString(),
            ["LabService:ConnectTimeoutSeconds"] = "2",
            ["LabService:HealthTimeoutSeconds"] = "3",
            ["Auth:SigningKey"] = Support.TestTokens.EncodedKey,
            // Limits no test here means to reach; RateLimitTests covers them.
            ["RateLimits:PerSubjectPerMinute"] = "1000000",
            ["RateLimits:ExecutionsPerSubjectPerMinute"] = "1000000",
            ["RateLimits:MaxConcurrentExecutionsPerSubject"] = "100000",
        }, logs: null);
        backend.UseKestrel();
        backend.StartServer();
        Backend = new HttpClient { BaseAddress = AddressOf(backend.Services), Timeout = Timeout.InfiniteTimeSpan }.As();
    }

    /// <summary>Stops the model server, as when Ollama goes away under a running lab.</summary>
    public async Task StopSimulatorAsync()
    {
        SimulatorStopped = true;
        await Simulator.DisposeAsync().AsTask().WaitAsync(Bound, TestContext.Current.CancellationToken);
    }

    /// <summary>Stops LabService; the Backend keeps running.</summary>
    public async Task StopLabServiceAsync()
    {
        var stopping = lab;
        lab = null;
        if (stopping is not null)
            await stopping.DisposeAsync().AsTask().WaitAsync(Bound, TestContext.Current.CancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        Backend?.Dispose();
        if (backend is not null)
            await backend.DisposeAsync();
        if (lab is not null)
            await lab.DisposeAsync();
        if (!SimulatorStopped && Simulator is not null)
            await Simulator.DisposeAsync();
        if (Database is not null)
            await Database.DisposeAsync();
    }

    private static SimulatorOptions SimulatorOptions()
    {
        // Token latency 1 ms, not 0: tokens_per_second is derived from the reported eval time, which must be > 0.
        var options = new SimulatorOptions { TokenLatencyMs = 1, TimeToFirstTokenMs = 1, LoadDurationMs = 0, PullStepDelayMs = 0 };
        options.Models.Add(new SimulatedModel { Name = BrokenModel, Fault = "error_mid_stream" });
        options.Models.Add(new SimulatedModel { Name = BusyModel, Fault = "queue_full" });
        options.Models.Add(new SimulatedModel { Name = StuckModel, Fault = "stall" });
        options.Models.Add(new SimulatedModel { Name = SlowModel, TokenLatencyMs = 250 });
        return options;
    }

    private static Uri AddressOf(IServiceProvider services)
    {
        var address = services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses
            .First(a => a.StartsWith("http://", StringComparison.Ordinal));
        return new Uri(address.TrimEnd('/') + "/");
    }

    /// <summary>A service host with test settings, on loopback, optionally recording its logs.</summary>
    private sealed class ServiceFactory<TMarker>(Dictionary<string, string?> settings, ILoggerProvider? logs)
        : WebApplicationFactory<TMarker> where TMarker : class
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            // A free loopback port. Not UseKestrel(0): with a minimal-hosting Program the factory rewrites the server's
            // addresses while the entry point may already be starting Kestrel, which intermittently throws
            // "IServerAddressesFeature.Addresses cannot be modified after the server has started".
            builder.UseSetting("urls", "http://127.0.0.1:0");
            foreach (var (key, value) in settings)
                builder.UseSetting(key, value);
            builder.ConfigureLogging(logging =>
            {
                logging.SetMinimumLevel(LogLevel.Information);
                if (logs is not null)
                    logging.AddProvider(logs);
            });
        }
    }
}
