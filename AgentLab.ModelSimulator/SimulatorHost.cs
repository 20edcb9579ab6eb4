using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace AgentLab.ModelSimulator;

/// <summary>The simulator in-process on a free loopback port, for tests and the benchmark.</summary>
public sealed class SimulatorHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private SimulatorHost(WebApplication app, Uri baseAddress, SimulatorOptions options)
    {
        _app = app;
        BaseAddress = baseAddress;
        Options = options;
    }

    /// <summary>e.g. <c>http://127.0.0.1:41234/</c></summary>
    public Uri BaseAddress { get; }

    /// <summary>The options the running simulator uses (a copy of those passed in, validated).</summary>
    public SimulatorOptions Options { get; }

    /// <summary>Counters of the generation endpoints (admitted, aborted by the client, in flight).</summary>
    public SimulatorStats Stats => _app.Services.GetRequiredService<ModelRegistry>().Stats;

    public static async Task<SimulatorHost> StartAsync(SimulatorOptions? options = null, CancellationToken ct = default)
    {
        var app = SimulatorApp.Create(["--urls", "http://127.0.0.1:0"], options is null ? null : o => o.CopyFrom(options), isolated: true);
        try
        {
            await app.StartAsync(ct);
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return new SimulatorHost(app, new Uri(address.TrimEnd('/') + "/"), app.Services.GetRequiredService<IOptions<SimulatorOptions>>().Value);
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Streams left stalling on purpose must not hold the shutdown for the default 30 s.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await _app.StopAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
        }
        await _app.DisposeAsync();
    }
}
