using AgentLab.ModelSimulator;
using AgentLab.Tests.Support;
using Microsoft.Extensions.Configuration;

namespace AgentLab.Tests.Protocol;

/// <summary>The simulator in-process, started once for the class with the contract's settings.</summary>
public sealed class InProcessSimulatorFixture : IAsyncLifetime
{
    private SimulatorHost? _host;

    public Uri BaseAddress => _host?.BaseAddress ?? throw new InvalidOperationException("The simulator has not started.");

    public async ValueTask InitializeAsync()
    {
        // The same command-line settings the standalone process gets, bound the way the simulator binds them.
        var options = new SimulatorOptions();
        new ConfigurationBuilder().AddCommandLine(OllamaClientContract.SimulatorArgs).Build()
            .GetSection(SimulatorOptions.Section).Bind(options);
        _host = await SimulatorHost.StartAsync(options, TestContext.Current.CancellationToken)
            .WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_host is not null)
            await _host.DisposeAsync();
    }
}

/// <summary>The standalone simulator (<c>AgentLab.ModelSimulator</c>) as its own process, started once for the class.</summary>
public sealed class StandaloneSimulatorFixture : IAsyncLifetime
{
    private ServiceProcess? _process;

    public Uri BaseAddress => _process?.BaseAddress ?? throw new InvalidOperationException("The simulator process has not started.");

    public async ValueTask InitializeAsync()
    {
        var environment = new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["Logging__LogLevel__Default"] = "Warning",
        };
        _process = await ServiceProcess.StartAsync("AgentLab.ModelSimulator", "/", environment, OllamaClientContract.SimulatorArgs,
            TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is not null)
            await _process.DisposeAsync();
    }
}

/// <summary>The client contract against the simulator hosted in the test process.</summary>
public sealed class InProcessSimulatorProtocolTests(InProcessSimulatorFixture fixture)
    : OllamaClientContract, IClassFixture<InProcessSimulatorFixture>
{
    protected override Uri BaseAddress => fixture.BaseAddress;
}

/// <summary>The client contract against the standalone simulator process: the deployable, not just its code.</summary>
public sealed class StandaloneSimulatorProtocolTests(StandaloneSimulatorFixture fixture)
    : OllamaClientContract, IClassFixture<StandaloneSimulatorFixture>
{
    protected override Uri BaseAddress => fixture.BaseAddress;
}
