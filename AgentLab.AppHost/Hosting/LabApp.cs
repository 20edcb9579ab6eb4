using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using AgentLab.AppHost.Dashboard;

namespace AgentLab.AppHost.Hosting;

/// <summary>What every resource runner shares: the launcher, the health client, the output and the timings.</summary>
internal sealed class LabRuntime(AppHostOptions options, TextWriter output, ResourceContextFactory contexts) : IDisposable
{
    public ProcessLauncher Launcher { get; } = new();

    // Health checks only: short per-request timeout, no proxy (the lab is all loopback).
    public HttpClient Http { get; } = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(2) };

    public TextWriter Output { get; } = output;

    /// <summary>Given to every project resource first (the dashboard's OTLP endpoint); anything declared wins over it.</summary>
    public IReadOnlyDictionary<string, string> ServiceEnvironment { get; set; } = new Dictionary<string, string>();

    public bool Echo => options.EchoOutput;

    public ResourceContextFactory Contexts { get; } = contexts;

    public TimeSpan StartTimeout => TimeSpan.FromSeconds(options.StartTimeoutSeconds);

    public TimeSpan StopGrace => TimeSpan.FromSeconds(options.StopTimeoutSeconds);

    public TimeSpan HealthInterval => TimeSpan.FromSeconds(options.HealthCheckIntervalSeconds);

    public TimeSpan MaxRestartDelay => TimeSpan.FromMilliseconds(options.MaxRestartDelayMilliseconds);

    /// <summary>First delay × 2^crashes, capped.</summary>
    public TimeSpan RestartDelay(int consecutiveCrashes) =>
        TimeSpan.FromMilliseconds(Math.Min(options.MaxRestartDelayMilliseconds,
            options.RestartDelayMilliseconds * Math.Pow(2, Math.Min(consecutiveCrashes, 30))));

    /// <summary>References first (in Aspire's names), then WithEnvironment values, then <c>AppHost:Environment:{name}</c>; later ones win.</summary>
    public Dictionary<string, string> EnvironmentFor(LabResource resource)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        if (resource is ProjectResource)
        {
            foreach (var (key, value) in ServiceEnvironment)
                environment[key] = value;
        }
        foreach (var reference in resource.References)
        {
            foreach (var (key, value) in reference.GetReferenceConfiguration())
                environment[key] = value;
        }
        foreach (var (key, value) in resource.EnvironmentEntries)
            environment[key] = value();
        if (options.Environment.TryGetValue(resource.Name, out var configured))
        {
            foreach (var (key, value) in configured)
                environment[key] = value;
        }
        return environment;
    }

    public void Write(string line) => Output.WriteLine($"[apphost] {line}");

    public void Dispose()
    {
        Launcher.Dispose();
        Http.Dispose();
    }
}

/// <summary>
/// The runner (Aspire's DistributedApplication): checks ports before anything starts, starts resources in dependency
/// order (each after its WaitFor dependencies are ready), prints one line per state change and a status table, and
/// stops everything in reverse order.
/// </summary>
public sealed class LabApp : IAsyncDisposable
{
    private readonly IReadOnlyList<LabResource> _resources;
    private readonly AppHostOptions _options;
    private readonly TextWriter _output;
    private readonly LabRuntime _runtime;
    // Replaced whole, never changed in place: the dashboard reads it from its own threads while the lab starts.
    private volatile Dictionary<LabResource, ResourceRunner> _runners = [];
    private readonly SemaphoreSlim _stopGate = new(1, 1);
    private IReadOnlyList<LabResource> _order = [];
    private bool _stopped;

    private readonly IReadOnlyList<string> _readyNotes;

    internal LabApp(IReadOnlyList<LabResource> resources, AppHostOptions options, TextWriter output, ResourceContextFactory contexts,
        IReadOnlyList<string>? readyNotes = null, LabDashboard? dashboard = null)
    {
        _resources = resources;
        Dashboard = dashboard;
        _readyNotes = readyNotes ?? [];
        _options = options;
        _output = output;
        _runtime = new LabRuntime(options, output, contexts);
    }

    public IReadOnlyList<LabResource> Resources => _resources;

    /// <summary>The dashboard and its telemetry, when enabled (<c>Dashboard:Enabled</c>).</summary>
    public LabDashboard? Dashboard { get; }

    public LabResource GetResource(string name) =>
        _resources.FirstOrDefault(r => string.Equals(r.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new KeyNotFoundException($"No resource named '{name}'.");

    /// <summary>Starts everything; returns once every resource is ready. On failure stops what started and throws.</summary>
    public async Task StartAsync(CancellationToken ct)
    {
        if (_runners.Count > 0 || _stopped)
            throw new InvalidOperationException("A LabApp starts once.");
        _order = TopologicalOrder(_resources);
        AssignPorts();
        if (Dashboard is not null)
        {
            // First, so the services are started with the receiver's address and the URL is on screen while they start.
            await Dashboard.StartAsync(this, ct).ConfigureAwait(false);
            _runtime.ServiceEnvironment = Dashboard.ServiceEnvironment();
            _runtime.Write($"dashboard: {Dashboard.Url} (telemetry in at {Dashboard.OtlpEndpoint})");
        }

        var runners = new Dictionary<LabResource, ResourceRunner>();
        foreach (var resource in _order)
        {
            resource.StateChanged += OnStateChanged;
            runners[resource] = new ResourceRunner(resource, _runtime);
        }
        _runners = runners;
        foreach (var resource in _order)
            _runners[resource].Start([.. resource.WaitsFor.Select(d => _runners[d])]);

        try
        {
            await WhenAllReadyAsync(ct).ConfigureAwait(false);
        }
        catch
        {
            await StopAsync().ConfigureAwait(false);
            throw;
        }
        _output.Write(StatusTable.Render(_order));
        if (Dashboard?.Url is { } url)
            _output.WriteLine($"Dashboard: {url}");
        foreach (var note in _readyNotes)
            _output.WriteLine(note);
    }

    private async Task WhenAllReadyAsync(CancellationToken ct)
    {
        // Settled, not Ready: a resource stopped from the dashboard while starting does not hold the lab's start up.
        var pending = _runners.Values.Select(r => r.Settled).ToList();
        while (pending.Count > 0)
        {
            var done = await Task.WhenAny(pending).WaitAsync(ct).ConfigureAwait(false);
            pending.Remove(done);
            if (!done.IsFaulted)
                continue;
            // Report the root cause, not the dependents that were never started because of it.
            var root = _runners.Values.Select(r => r.Ready)
                .Where(t => t.IsFaulted && t.Exception?.InnerException is not DependencyFailedException)
                .Select(t => t.Exception!.InnerException!).FirstOrDefault()
                ?? done.Exception!.InnerException!;
            throw root as LabStartupException ?? new LabStartupException(root.Message, root);
        }
    }

    /// <summary>Stops every resource in reverse dependency order (SIGTERM, bounded wait, SIGKILL). Idempotent.</summary>
    public async Task StopAsync()
    {
        await _stopGate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_stopped)
                return;
            _stopped = true;
            // Runners exist only once the ports were assigned: a port error stops before any was made.
            foreach (var resource in _order.Reverse())
            {
                if (_runners.TryGetValue(resource, out var runner))
                    await runner.StopAsync().ConfigureAwait(false);
            }
            // Last: the services' final export on shutdown still lands.
            if (Dashboard is not null)
                await Dashboard.DisposeAsync().ConfigureAwait(false);
            _runtime.Dispose();
        }
        finally
        {
            _stopGate.Release();
        }
    }

    /// <summary>
    /// Stops one resource as the dashboard asks: SIGTERM, grace, SIGKILL; state Exited and no automatic restart.
    /// Resources that depend on it are not stopped. Returns once its process is gone. Throws
    /// <see cref="KeyNotFoundException"/> for an unknown name and <see cref="ResourceActionException"/> when there is
    /// nothing to stop (an external resource, an exited one, the lab stopping).
    /// </summary>
    public Task StopResourceAsync(string name) => RunnerFor(name, ResourceAction.Stop).StopByUserAsync();

    /// <summary>Starts an exited (or failed) resource again: a new process, Running once its readiness check passes. Returns once it began.</summary>
    public Task StartResourceAsync(string name) => RunnerFor(name, ResourceAction.Start).StartByUserAsync();

    /// <summary>Stop, then start at once (a restarting or failed resource skips its backoff). Returns once the new start began.</summary>
    public Task RestartResourceAsync(string name) => RunnerFor(name, ResourceAction.Restart).RestartByUserAsync();

    /// <summary>What may be asked of <paramref name="resource"/> now (the dashboard's buttons).</summary>
    public IReadOnlyList<ResourceAction> AvailableActions(LabResource resource) =>
        _runners.TryGetValue(resource, out var runner) ? runner.AvailableActions() : [];

    /// <summary>Null when <paramref name="action"/> may be asked of <paramref name="resource"/> now, else why not.</summary>
    public string? WhyNot(LabResource resource, ResourceAction action) =>
        _runners.TryGetValue(resource, out var runner)
            ? runner.WhyNot(action)
            : $"{resource.Name} is not started yet: the lab is still starting (or it stopped).";

    private ResourceRunner RunnerFor(string name, ResourceAction action)
    {
        var resource = GetResource(name);
        // The runners are made once at start and never removed, so a lookup without a lock is safe after StartAsync.
        return _runners.TryGetValue(resource, out var runner)
            ? runner
            : throw new ResourceActionException(action, WhyNot(resource, action)!);
    }

    /// <summary>Starts, stays up until Ctrl+C / SIGTERM (or <paramref name="ct"/>), stops. Returns the exit code.</summary>
    public async Task<int> RunAsync(CancellationToken ct = default)
    {
        using var shutdown = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var signals = new List<PosixSignalRegistration>();
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGQUIT })
        {
            signals.Add(PosixSignalRegistration.Create(signal, context =>
            {
                context.Cancel = true; // we stop the resources ourselves, in order
                shutdown.Cancel();
            }));
        }
        try
        {
            try
            {
                await StartAsync(shutdown.Token).ConfigureAwait(false);
                _runtime.Write("all resources are up. Ctrl+C stops them.");
                await Task.Delay(Timeout.Infinite, shutdown.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (shutdown.IsCancellationRequested)
            {
                // asked to stop
            }
            catch (LabStartupException ex)
            {
                _output.WriteLine();
                _output.WriteLine($"AgentLab could not start: {ex.Message}");
                _output.WriteLine("Nothing was left running.");
                await StopAsync().ConfigureAwait(false);
                return 1;
            }
            // A second Ctrl+C while stopping ends the AppHost at once; the watchdog still kills the children.
            foreach (var registration in signals)
                registration.Dispose();
            signals.Clear();
            _runtime.Write("stopping...");
            await StopAsync().ConfigureAwait(false);
            _runtime.Write("stopped.");
            return 0;
        }
        finally
        {
            foreach (var registration in signals)
                registration.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        foreach (var resource in _order)
            resource.StateChanged -= OnStateChanged;
        _stopGate.Dispose();
    }

    private void OnStateChanged(LabResource resource, ResourceState from, ResourceState to)
    {
        var detail = to switch
        {
            ResourceState.Running => resource.Endpoint is { } e ? $" at {e.GetLeftPart(UriPartial.Authority)}" : "",
            ResourceState.Failed or ResourceState.Restarting => $": {FirstLine(resource.Message)}",
            _ => "",
        };
        _runtime.Write($"{resource.Name}: {from} -> {to}{detail}");
    }

    private static string FirstLine(string? text) => text?.Split('\n', 2)[0].TrimEnd() ?? "";

    /// <summary>Gives each resource with a port its endpoint; every port in use is named in one error before anything starts.</summary>
    private void AssignPorts()
    {
        var problems = new List<string>();
        var taken = new Dictionary<int, string>();
        foreach (var resource in _order)
        {
            if (_options.Ports.TryGetValue(resource.Name, out var configured))
                resource.Port = configured;
            if (resource.Port is not { } port)
                continue;
            if (port == 0)
                port = FreePort();
            else if (taken.TryGetValue(port, out var other))
                problems.Add($"port {port} is given to both {other} and {resource.Name}: set another with --Ports:{resource.Name}=<port>.");
            else if (!IsFree(port))
                problems.Add($"port {port} for {resource.Name} is in use (another AgentLab, or the service started by hand?): stop what listens there (`ss -ltnp 'sport = :{port}'` shows it) or choose another port with --Ports:{resource.Name}=<port>.");
            taken[port] = resource.Name;
            resource.SetEndpoint(port);
        }
        if (problems.Count > 0)
            throw new LabStartupException(string.Join(Environment.NewLine, problems));
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Dependencies (WaitFor and WithReference) before dependents, otherwise in declaration order.</summary>
    internal static IReadOnlyList<LabResource> TopologicalOrder(IReadOnlyList<LabResource> resources)
    {
        var order = new List<LabResource>();
        var state = new Dictionary<LabResource, bool>(); // false = visiting, true = done
        foreach (var resource in resources)
            Visit(resource, []);
        return order;

        void Visit(LabResource resource, List<string> path)
        {
            if (state.TryGetValue(resource, out var done))
            {
                if (!done)
                    throw new LabStartupException($"resources wait for each other in a circle: {string.Join(" -> ", path.Append(resource.Name))}. Remove one WaitFor/WithReference.");
                return;
            }
            if (!resources.Contains(resource))
                throw new LabStartupException($"{path.LastOrDefault()} refers to {resource.Name}, which was declared on another builder.");
            state[resource] = false;
            path.Add(resource.Name);
            foreach (var dependency in resource.WaitsFor.Concat(resource.References))
                Visit(dependency, path);
            path.RemoveAt(path.Count - 1);
            state[resource] = true;
            order.Add(resource);
        }
    }
}
