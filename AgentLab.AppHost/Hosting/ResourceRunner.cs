using System.Diagnostics;

namespace AgentLab.AppHost.Hosting;

/// <summary>
/// The life of one resource: wait for its dependencies, prepare, start, wait until ready (bounded), watch its health,
/// restart it with exponential backoff when it exits on its own, and stop it gracefully when asked. The dashboard's
/// stop, start and restart end the current loop and begin a new one, one action at a time.
/// </summary>
internal sealed class ResourceRunner(
    LabResource resource,
    LabRuntime runtime)
{
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    // Completes when the user stops it before it was ever ready: the lab's start stops waiting for it (and for what
    // waits for it), while its dependents go on waiting until it is started again.
    private readonly TaskCompletionSource _stoppedBeforeReady = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();
    // One action at a time (user stop/start/restart and the lab's final stop): two clicks never start two processes.
    private readonly SemaphoreSlim _actions = new(1, 1);
    // The current loop's stop signal. Replaced only after that loop has ended, so a loop only ever sees its own.
    private CancellationTokenSource _stop = new();
    private SupervisedProcess? _current;
    private Task _loop = Task.CompletedTask;
    private volatile bool _shutDown;
    private volatile string? _inProgress; // the action that holds the gate, so the page offers nothing meanwhile
    private bool _prepared;
    private IReadOnlyList<ResourceRunner> _dependencies = [];

    public LabResource Resource => resource;

    /// <summary>Completes when the resource is first ready; faults when it failed to start; cancelled by the lab's stop.</summary>
    public Task Ready => _ready.Task;

    /// <summary>
    /// Completes when the user stopped it, or a resource it waits for, before it was ever ready: then it is not ready
    /// and may never be, but nothing has failed.
    /// </summary>
    public Task Held { get; private set; } = Task.Delay(Timeout.Infinite);

    /// <summary>What the lab's start waits for: ready, or held (see <see cref="Held"/>); faults as <see cref="Ready"/> does.</summary>
    public Task Settled { get; private set; } = Task.CompletedTask;

    /// <summary>Begins the first loop; <paramref name="dependencies"/> have begun theirs already.</summary>
    public void Start(IReadOnlyList<ResourceRunner> dependencies)
    {
        _dependencies = dependencies;
        Held = Task.WhenAny([_stoppedBeforeReady.Task, .. dependencies.Select(d => d.Held)]);
        Settled = SettleAsync();
        _loop = RunAsync(dependencies);
    }

    /// <summary>This resource, if the user stopped it before it was ready, else those it waits for that were, however deep.</summary>
    private IEnumerable<ResourceRunner> StoppedBeforeReady() => _stoppedBeforeReady.Task.IsCompleted
        ? [this]
        : _dependencies.Where(d => !d.Ready.IsCompleted).SelectMany(d => d.StoppedBeforeReady());

    private async Task SettleAsync()
    {
        if (await Task.WhenAny(Ready, Held).ConfigureAwait(false) == Ready)
            await Ready.ConfigureAwait(false);
    }

    /// <summary>The actions that make sense now (the dashboard's buttons); the action itself checks again under its gate.</summary>
    public IReadOnlyList<ResourceAction> AvailableActions() =>
        [.. Enum.GetValues<ResourceAction>().Where(a => WhyNot(a) is null)];

    /// <summary>Null when <paramref name="action"/> may be asked now, else why not (for people).</summary>
    public string? WhyNot(ResourceAction action)
    {
        if (resource.Kind == ResourceKind.External)
            return $"{resource.Name} runs outside the lab (it is only a connection string): there is no process to {Verb(action)}.";
        if (_shutDown)
            return "the lab is stopping.";
        var state = resource.State;
        var name = $"{resource.Name} is {state.ToString().ToLowerInvariant()}";
        if (_inProgress is { } running)
            return $"{name}: a {running} asked earlier is still in progress (a stop waits up to {runtime.StopGrace.TotalSeconds:0} s for the process to end).";
        return action switch
        {
            ResourceAction.Stop => state is ResourceState.Starting or ResourceState.Running or ResourceState.Unhealthy or ResourceState.Restarting
                ? null
                : $"{name}: it has no process to stop.",
            ResourceAction.Start => state is ResourceState.Exited or ResourceState.Failed
                ? null
                : state == ResourceState.Waiting
                    ? $"{name} (for the resources it waits for): it starts on its own once they are ready."
                    : $"{name}: it runs already; use restart to start a new process.",
            ResourceAction.Restart => state is ResourceState.Starting or ResourceState.Running or ResourceState.Unhealthy
                or ResourceState.Restarting or ResourceState.Failed
                ? null
                : state == ResourceState.Exited
                    ? $"{name}: it has no process to restart; use start."
                    : $"{name} (for the resources it waits for): it starts on its own once they are ready.",
            _ => $"unknown action {action}.",
        };

        static string Verb(ResourceAction action) => action.ToString().ToLowerInvariant();
    }

    /// <summary>
    /// Stops the process (SIGTERM, grace, SIGKILL) and keeps it stopped: state Exited, no restart. Resources that depend
    /// on it keep running (the user asked for this one); stopped before it was ever ready, those that wait for it go on
    /// waiting until it is started again, and the lab's start no longer waits for them. Returns once the process is gone.
    /// </summary>
    public Task StopByUserAsync() => ActAsync(ResourceAction.Stop, async () =>
    {
        // Shown while it goes on: a process that ignores its stop signal takes the whole grace.
        resource.Message = $"stopping: {SignalName()} sent, SIGKILL after {runtime.StopGrace.TotalSeconds:0} s";
        await StopLoopAsync().ConfigureAwait(false);
        resource.Message = "stopped from the dashboard";
        resource.SetState(ResourceState.Exited);
        if (!_ready.Task.IsCompleted)
            _stoppedBeforeReady.TrySetResult();
    });

    /// <summary>Begins a new loop (a new process; its readiness decides Running). Returns once it began.</summary>
    public Task StartByUserAsync() => ActAsync(ResourceAction.Start, () =>
    {
        BeginLoop();
        return Task.CompletedTask;
    });

    /// <summary>Stop (when it has a process), then start at once; a restarting or failed one starts without its backoff.</summary>
    public Task RestartByUserAsync() => ActAsync(ResourceAction.Restart, async () =>
    {
        resource.Message = $"restarting: {SignalName()} sent, SIGKILL after {runtime.StopGrace.TotalSeconds:0} s";
        await StopLoopAsync().ConfigureAwait(false);
        BeginLoop();
    });

    private string SignalName()
    {
        lock (_gate)
            return _current?.StopSignal == StopSignal.Interrupt ? "SIGINT" : "SIGTERM";
    }

    private async Task ActAsync(ResourceAction action, Func<Task> act)
    {
        await _actions.WaitAsync().ConfigureAwait(false);
        try
        {
            // Checked again under the gate: the state may have moved since the caller looked.
            if (WhyNot(action) is { } why)
                throw new ResourceActionException(action, why);
            var verb = action.ToString().ToLowerInvariant();
            runtime.Write($"{resource.Name}: {verb} asked from the dashboard");
            _inProgress = verb;
            try
            {
                await act().ConfigureAwait(false);
            }
            finally
            {
                _inProgress = null;
            }
        }
        finally
        {
            _actions.Release();
        }
    }

    private void BeginLoop()
    {
        // The previous loop has ended (StopLoopAsync awaited it, or it ended on its own as Exited/Failed).
        _stop = new CancellationTokenSource();
        resource.Message = null;
        // No waiting for dependencies again: they were ready once; its own readiness check decides Running.
        _loop = RunAsync([]);
    }

    private async Task RunAsync(IReadOnlyList<ResourceRunner> dependencies)
    {
        try
        {
            var allReady = Task.WhenAll(dependencies.Select(d => d.Ready));
            await Task.WhenAny(allReady, Held).WaitAsync(_stop.Token).ConfigureAwait(false);
            if (!allReady.IsCompleted)
            {
                var stopped = _dependencies.SelectMany(d => d.StoppedBeforeReady()).Distinct().Select(d => d.Resource.Name);
                resource.Message = $"waiting: {string.Join(", ", stopped)} was stopped from the dashboard before it was ready; start it to go on";
                await allReady.WaitAsync(_stop.Token).ConfigureAwait(false);
                resource.Message = null;
            }
            await allReady.ConfigureAwait(false); // a dependency that failed throws here
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            return;
        }
        catch (Exception)
        {
            var failed = dependencies.Where(d => d.Ready.IsFaulted || d.Ready.IsCanceled).Select(d => d.Resource.Name);
            resource.Message = $"not started: {string.Join(", ", failed)} did not start";
            _ready.TrySetException(new DependencyFailedException(resource.Message));
            return;
        }

        resource.SetState(ResourceState.Starting);
        try
        {
            // One-time work (an initdb, say): a start from the dashboard does not repeat it.
            if (!_prepared)
            {
                using var prepareTimeout = Bounded();
                await resource.PrepareAsync(prepareTimeout.Token).ConfigureAwait(false);
                _prepared = true;
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            return;
        }
        catch (Exception ex)
        {
            Fail($"{resource.Name}: preparation failed: {ex.Message}", ex);
            return;
        }

        var consecutiveCrashes = 0;
        var firstStart = true;
        while (!_stop.IsCancellationRequested)
        {
            SupervisedProcess? process;
            try
            {
                var spec = resource.CreateProcess(runtime.Contexts.Create(runtime.EnvironmentFor(resource)));
                if (spec is null)
                {
                    await RunExternalAsync().ConfigureAwait(false);
                    return;
                }
                lock (_gate)
                {
                    // StopAsync cancels under this lock: nothing starts after it looked at _current.
                    if (_stop.IsCancellationRequested)
                        return;
                    process = _current = runtime.Launcher.Start(spec, OnLine);
                }
                resource.ProcessId = process.Id;
                runtime.Write($"{resource.Name}: started process {process.Id}");
            }
            catch (LabStartupException ex) when (firstStart)
            {
                Fail(ex.Message, ex);
                return;
            }
            catch (LabStartupException ex)
            {
                runtime.Write($"{resource.Name}: {ex.Message}");
                process = null;
            }

            var upSince = Stopwatch.StartNew();
            if (process is not null)
            {
                var failure = await WaitReadyAsync(process).ConfigureAwait(false);
                if (_stop.IsCancellationRequested)
                    return;
                if (failure is null)
                {
                    resource.Message = null;
                    resource.StartedAt = DateTimeOffset.UtcNow; // uptime is per process: every new one starts at zero
                    resource.SetState(ResourceState.Running);
                    if (firstStart)
                    {
                        firstStart = false;
                        if (!await AfterReadyAsync().ConfigureAwait(false))
                            return;
                        _ready.TrySetResult();
                    }
                    await WatchAsync(process).ConfigureAwait(false);
                    if (_stop.IsCancellationRequested)
                        return;
                }
                else if (firstStart)
                {
                    await process.StopAsync(runtime.StopGrace).ConfigureAwait(false);
                    Fail(failure, null);
                    return;
                }
                else
                {
                    // A restart that never became ready counts as one more crash.
                    runtime.Write($"{resource.Name}: {failure}");
                    await process.StopAsync(runtime.StopGrace).ConfigureAwait(false);
                }
            }

            // It exited on its own (or could not start again): restart with exponential backoff.
            if (upSince.Elapsed >= runtime.MaxRestartDelay)
                consecutiveCrashes = 0; // it had been stable: start again quickly
            var delay = runtime.RestartDelay(consecutiveCrashes++);
            var exit = process is { Exited.IsCompletedSuccessfully: true } ? $"exited with code {process.Exited.Result}" : "is down";
            resource.StartedAt = null;
            resource.RestartCount++;
            resource.Message = $"{exit}; restart {resource.RestartCount} in {delay.TotalSeconds:0.###} s";
            resource.SetState(ResourceState.Restarting);
            process?.Dispose();
            try
            {
                await Task.Delay(delay, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            resource.SetState(ResourceState.Starting);
        }
    }

    private async Task RunExternalAsync()
    {
        // Nothing to start: ready when its readiness says so (an external server may be checked), once.
        string? failure = null;
        try
        {
            using var timeout = Bounded();
            await resource.WaitReadyAsync(runtime.Http, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            return;
        }
        catch (OperationCanceledException)
        {
            failure = $"{resource.Name} ({resource.ConnectionString ?? resource.Endpoint?.ToString()}) did not answer within {runtime.StartTimeout.TotalSeconds:0} s: check that it runs and the connection string is right.";
        }
        if (failure is not null)
        {
            Fail(failure, null);
            return;
        }
        resource.SetState(ResourceState.Running);
        if (await AfterReadyAsync().ConfigureAwait(false))
            _ready.TrySetResult();
    }

    private async Task<bool> AfterReadyAsync()
    {
        try
        {
            using var timeout = Bounded();
            await resource.AfterReadyAsync(timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            return false;
        }
        catch (Exception ex)
        {
            Fail($"{resource.Name}: the step after it became ready failed: {ex.Message}", ex);
            return false;
        }
    }

    /// <summary>Null once ready; otherwise what went wrong, for people.</summary>
    private async Task<string?> WaitReadyAsync(SupervisedProcess process)
    {
        using var timeout = Bounded();
        var ready = resource.WaitReadyAsync(runtime.Http, timeout.Token);
        var first = await Task.WhenAny(ready, process.Exited).ConfigureAwait(false);
        if (first == process.Exited)
        {
            await timeout.CancelAsync().ConfigureAwait(false);
            await ready.ContinueWith(static _ => { }, TaskScheduler.Default).ConfigureAwait(false); // observe it
            return $"{resource.Name} exited with code {process.Exited.Result} while starting. Its last output:{Environment.NewLine}{resource.Log.Tail(20)}";
        }
        try
        {
            await ready.ConfigureAwait(false);
            return null;
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            return "stopped while starting";
        }
        catch (OperationCanceledException)
        {
            var what = resource.HealthCheckPath is { } path && resource.Endpoint is { } endpoint
                ? $"GET {new Uri(endpoint, path)} never answered 2xx"
                : "its readiness check never passed";
            return $"{resource.Name} was not ready within {runtime.StartTimeout.TotalSeconds:0} s: {what}. " +
                   $"Check its output (lines prefixed [{resource.Name}]) or raise {AppHostOptions.Section}:StartTimeoutSeconds. " +
                   $"Its last output:{Environment.NewLine}{resource.Log.Tail(20)}";
        }
        catch (Exception ex)
        {
            return $"{resource.Name}: readiness check failed: {ex.Message}";
        }
    }

    /// <summary>Until the process exits or the resource is stopped: repeats the health check, Running ⇄ Unhealthy.</summary>
    private async Task WatchAsync(SupervisedProcess process)
    {
        using var timer = new PeriodicTimer(runtime.HealthInterval);
        while (true)
        {
            var tick = timer.WaitForNextTickAsync(_stop.Token).AsTask();
            if (await Task.WhenAny(tick, process.Exited).ConfigureAwait(false) == process.Exited || _stop.IsCancellationRequested)
            {
                await tick.ContinueWith(static _ => { }, TaskScheduler.Default).ConfigureAwait(false);
                return;
            }
            bool healthy;
            try
            {
                using var check = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                check.CancelAfter(runtime.HealthInterval);
                healthy = await resource.IsHealthyAsync(runtime.Http, check.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception)
            {
                healthy = false;
            }
            if (!process.Exited.IsCompleted)
                resource.SetState(healthy ? ResourceState.Running : ResourceState.Unhealthy);
        }
    }

    /// <summary>The lab's stop: SIGTERM, bounded wait, SIGKILL; then the state is Exited (or stays Failed). Final.</summary>
    public async Task StopAsync()
    {
        // After an action in progress (a start from the dashboard must not leave a process behind).
        await _actions.WaitAsync().ConfigureAwait(false);
        try
        {
            _shutDown = true;
            await StopLoopAsync().ConfigureAwait(false);
            // Whoever still waits for its first readiness (a dependent, the lab's start) stops waiting.
            _ready.TrySetCanceled();
            if (resource.State != ResourceState.Failed)
                resource.SetState(ResourceState.Exited);
        }
        finally
        {
            _actions.Release();
        }
    }

    /// <summary>Ends the current loop and its process (its stop signal, grace, SIGKILL); the state is left to the caller.</summary>
    private async Task StopLoopAsync()
    {
        SupervisedProcess? process;
        lock (_gate)
        {
            _stop.Cancel();
            process = _current;
            _current = null;
        }
        if (process is not null && !process.Exited.IsCompleted)
        {
            runtime.Write($"{resource.Name}: stopping process {process.Id}");
            await process.StopAsync(runtime.StopGrace).ConfigureAwait(false);
        }
        await _loop.ContinueWith(static _ => { }, TaskScheduler.Default).ConfigureAwait(false);
        resource.StartedAt = null;
        process?.Dispose();
    }

    private void OnLine(string text, bool isError)
    {
        resource.Log.Write(text, isError);
        if (runtime.Echo)
            runtime.Output.WriteLine($"[{resource.Name}] {text}");
    }

    private void Fail(string message, Exception? exception)
    {
        resource.StartedAt = null;
        resource.Message = message;
        resource.SetState(ResourceState.Failed);
        _ready.TrySetException(new LabStartupException(message, exception ?? new InvalidOperationException(message)));
    }

    private CancellationTokenSource Bounded()
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        cts.CancelAfter(runtime.StartTimeout);
        return cts;
    }
}

/// <summary>What the dashboard may ask of a resource.</summary>
public enum ResourceAction
{
    Stop,
    Start,
    Restart,
}

/// <summary>An action that does not make sense in the resource's current state; the message says why.</summary>
public sealed class ResourceActionException(ResourceAction action, string message) : InvalidOperationException(message)
{
    public ResourceAction Action { get; } = action;
}

/// <summary>A resource was not started because one it waits for failed; the root cause is reported instead.</summary>
internal sealed class DependencyFailedException(string message) : Exception(message);
