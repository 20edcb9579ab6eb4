using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;

namespace AgentLab.Tests.Support;

/// <summary>
/// One of our services started from its build output as a separate process on a free loopback port.
/// Shared by the protocol tests and the benchmark (linked into bench/AgentLab.Bench).
/// </summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Queue<string> _output = new();

    private ServiceProcess(Process process, Uri baseAddress)
    {
        _process = process;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }

    /// <summary>The OS process id (benchmarks read its memory from /proc/&lt;pid&gt;/status).</summary>
    public int ProcessId => _process.Id;

    /// <summary>CPU time the process has used so far (user + system), for per-request cost in benchmarks.</summary>
    public TimeSpan TotalProcessorTime
    {
        get
        {
            _process.Refresh();
            return _process.TotalProcessorTime;
        }
    }

    /// <summary>The last lines the process wrote (stdout and stderr), for failure messages.</summary>
    public string RecentOutput
    {
        get { lock (_output) return string.Join(Environment.NewLine, _output); }
    }

    private void Remember(string? line)
    {
        if (line is null)
            return;
        lock (_output)
        {
            _output.Enqueue(line);
            if (_output.Count > 200)
                _output.Dequeue();
        }
    }

    public static async Task<ServiceProcess> StartAsync(string project, string readyPath,
        IReadOnlyDictionary<string, string> environment, IEnumerable<string> args, CancellationToken ct = default)
    {
        var baseAddress = new Uri($"http://127.0.0.1:{FreePort()}/");
        var info = StartInfo(project, baseAddress.ToString().TrimEnd('/'), environment, args);

        ServiceProcess? service = null;
        var process = new Process { StartInfo = info };
        // Drain the pipes so a chatty service never blocks on a full buffer.
        process.OutputDataReceived += (_, e) => service?.Remember(e.Data);
        process.ErrorDataReceived += (_, e) => service?.Remember(e.Data);
        service = new ServiceProcess(process, baseAddress);
        if (!process.Start())
            throw new InvalidOperationException($"Could not start {project} ({info.ArgumentList[0]}).");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        try
        {
            await service.WaitReadyAsync(project, readyPath, TimeSpan.FromSeconds(30), ct);
        }
        catch
        {
            await service.DisposeAsync();
            throw;
        }
        return service;
    }

    private async Task WaitReadyAsync(string project, string path, TimeSpan timeout, CancellationToken ct)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout)
        {
            if (_process.HasExited)
            {
                // Unlike HasExited, this also waits until the output handlers saw the last line (the reason it stopped).
                await _process.WaitForExitAsync(ct);
                throw new InvalidOperationException($"{project} exited with code {_process.ExitCode} while starting:{Environment.NewLine}{RecentOutput}");
            }
            try
            {
                using var response = await http.GetAsync(new Uri(BaseAddress, path), ct);
                if (response.IsSuccessStatusCode)
                    return;
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
                // A probe slower than 2 s (a loaded machine, the first request's JIT): ask again within the bound.
            }
            await Task.Delay(100, ct);
        }
        throw new TimeoutException($"{project} did not answer {path} within {timeout.TotalSeconds} s:{Environment.NewLine}{RecentOutput}");
    }

    /// <summary>
    /// Runs <paramref name="project"/> when it is expected to refuse to start (a missing key, say): its exit code and
    /// everything it wrote, stdout and stderr. Fails the test if it is still running after <paramref name="bound"/>.
    /// </summary>
    public static async Task<(int ExitCode, string Output)> RunUntilExitAsync(string project,
        IReadOnlyDictionary<string, string> environment, TimeSpan bound, CancellationToken ct)
    {
        using var process = Process.Start(StartInfo(project, "http://127.0.0.1:0", environment, []))
            ?? throw new InvalidOperationException($"Could not start {project}.");
        var output = process.StandardOutput.ReadToEndAsync(ct);
        var error = process.StandardError.ReadToEndAsync(ct);
        try
        {
            await process.WaitForExitAsync(ct).WaitAsync(bound, ct);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{project} was expected to stop, and still ran after {bound.TotalSeconds} s.");
        }
        return (process.ExitCode, await output.WaitAsync(bound, ct) + await error.WaitAsync(bound, ct));
    }

    /// <summary>
    /// <c>dotnet {project}.dll --urls {urls}</c> from the service's build output, in its own output folder: the content
    /// root is the working directory, so it reads its own appsettings.json, not whatever the caller's folder holds (a
    /// test output folder has another service's). The caller's environment is inherited; <paramref name="environment"/> wins.
    /// </summary>
    private static ProcessStartInfo StartInfo(string project, string urls, IReadOnlyDictionary<string, string> environment, IEnumerable<string> args)
    {
        var dll = Path.Combine(RepoRoot(), project, "bin", BuildConfiguration(), "net10.0", project + ".dll");
        if (!File.Exists(dll))
            throw new FileNotFoundException($"{dll} is missing: build the solution in {BuildConfiguration()} first.");
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        info.ArgumentList.Add(dll);
        info.ArgumentList.Add("--urls");
        info.ArgumentList.Add(urls);
        foreach (var arg in args)
            info.ArgumentList.Add(arg);
        foreach (var (key, value) in environment)
            info.Environment[key] = value;
        return info;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        _process.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    internal static string BuildConfiguration() =>
        typeof(ServiceProcess).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";

    internal static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AgentLab.sln")))
                return dir.FullName;
        }
        throw new DirectoryNotFoundException("AgentLab.sln not found above " + AppContext.BaseDirectory);
    }
}
