using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using AgentLab.AppHost.Hosting;
using AgentLab.AppHost.Infrastructure;

namespace AgentLab.Tests.AppHost;

/// <summary>
/// Runs a recipe's <see cref="ProcessSpec"/> with a plain <see cref="Process"/> (the runner is not under test here):
/// drains its output, stops it on dispose (SIGTERM, then a kill of the whole tree), so no test leaves a server behind.
/// </summary>
internal sealed class InfrastructureProcess : IAsyncDisposable
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly Process process;
    private readonly Queue<string> output = new();

    private InfrastructureProcess(Process process) => this.process = process;

    public int Id => process.Id;

    public string RecentOutput
    {
        get { lock (output) return string.Join(Environment.NewLine, output); }
    }

    public static InfrastructureProcess Start(ProcessSpec spec)
    {
        var info = new ProcessStartInfo(spec.FileName) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in spec.Arguments)
            info.ArgumentList.Add(argument);
        foreach (var (key, value) in spec.Environment)
            info.Environment[key] = value;
        if (spec.WorkingDirectory is not null)
            info.WorkingDirectory = spec.WorkingDirectory;

        var started = new InfrastructureProcess(new Process { StartInfo = info });
        started.process.OutputDataReceived += (_, e) => started.Remember(e.Data);
        started.process.ErrorDataReceived += (_, e) => started.Remember(e.Data);
        started.process.Start();
        started.process.BeginOutputReadLine();
        started.process.BeginErrorReadLine();
        return started;
    }

    /// <summary>Polls the recipe's probe until it says ready; fails with the server's output if it exits or never answers.</summary>
    public async Task WaitReadyAsync(IInfrastructureRecipe recipe, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < Bound)
        {
            if (process.HasExited)
                throw new InvalidOperationException($"{recipe.Name} exited with {process.ExitCode} while starting:{Environment.NewLine}{RecentOutput}");
            if (await recipe.IsReadyAsync(ct).WaitAsync(Bound, ct))
                return;
            await Task.Delay(50, ct);
        }
        throw new TimeoutException($"{recipe.Name} was not ready within {Bound.TotalSeconds} s:{Environment.NewLine}{RecentOutput}");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!process.HasExited)
            {
                // A graceful stop first, so PostgreSQL shuts down cleanly and the next start needs no recovery.
                using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
                    await kill.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(5));
                try
                {
                    await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
                }
                catch (TimeoutException)
                {
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
                }
            }
        }
        finally
        {
            process.Dispose();
        }
    }

    private void Remember(string? line)
    {
        if (line is null)
            return;
        lock (output)
        {
            output.Enqueue(line);
            if (output.Count > 200)
                output.Dequeue();
        }
    }
}

internal static class InfrastructureTestKit
{
    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AgentLab.sln")))
                return dir.FullName;
        }
        throw new DirectoryNotFoundException("AgentLab.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>A fresh folder under /tmp that the test deletes; its parents are traversable by the postgres user.</summary>
    public static string ScratchFolder()
    {
        var path = Path.Combine(Path.GetTempPath(), "agentlab-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(path);
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101); // 0755: mktemp-style 0700 would hide the cluster from postgres
        return path;
    }

    public static void Delete(string folder)
    {
        if (Directory.Exists(folder))
            Directory.Delete(folder, recursive: true);
    }

    public static void Log(string message) => TestContext.Current.TestOutputHelper?.WriteLine(message);
}
