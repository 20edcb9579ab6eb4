using System.Diagnostics;
using System.Globalization;

namespace AgentLab.Tests.Backend.DatabaseDown;

/// <summary>
/// Pauses a whole PostgreSQL server with SIGSTOP, the way a frozen VM or a stuck host looks to its clients: the
/// postmaster and every backend it forked, so that neither new connections nor pooled ones get an answer, while the
/// kernel still accepts TCP connections. Dispose always resumes it.
/// </summary>
/// <remarks>Also stops a server quickly (<see cref="StopFastAsync"/>), for tests that take it away for good.</remarks>
internal sealed class ServerPause : IAsyncDisposable
{
    private readonly int root;
    private bool paused;

    private ServerPause(int root) => this.root = root;

    public static async Task<ServerPause> PauseAsync(int serverProcessId, CancellationToken ct)
    {
        Assert.True(serverProcessId > 0, "the server is not running");
        var pause = new ServerPause(serverProcessId);
        // The postmaster first, so that it cannot fork a backend we would miss; then everything below it.
        await SignalAsync("STOP", [serverProcessId], ct);
        pause.paused = true;
        await SignalAsync("STOP", Descendants(serverProcessId), ct);
        return pause;
    }

    public async Task ResumeAsync(CancellationToken ct)
    {
        if (!paused)
            return;
        await SignalAsync("CONT", [.. Descendants(root), root], ct);
        paused = false;
    }

    public async ValueTask DisposeAsync() => await ResumeAsync(CancellationToken.None);

    /// <summary>
    /// Stops the server the way <c>pg_ctl stop</c> does by default (SIGINT, a "fast" shutdown: open sessions are ended
    /// at once), rather than waiting, as SIGTERM does, for every pooled connection to close; waits until it is gone.
    /// </summary>
    public static async Task StopFastAsync(int serverProcessId, CancellationToken ct)
    {
        if (serverProcessId <= 0)
            return;
        await SignalAsync("INT", [serverProcessId], ct);
        var clock = Stopwatch.StartNew();
        while (Directory.Exists($"/proc/{serverProcessId}") && !IsZombie(serverProcessId))
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(15))
                Assert.Fail($"PostgreSQL (pid {serverProcessId}) did not stop within 15 s of SIGINT");
            await Task.Delay(20, ct);
        }
    }

    private static bool IsZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
        }
        catch (IOException)
        {
            return true;
        }
    }

    private static async Task SignalAsync(string signal, IReadOnlyCollection<int> pids, CancellationToken ct)
    {
        if (pids.Count == 0)
            return;
        var info = new ProcessStartInfo("kill") { RedirectStandardError = true };
        info.ArgumentList.Add("-" + signal);
        foreach (var pid in pids)
            info.ArgumentList.Add(pid.ToString(CultureInfo.InvariantCulture));
        using var kill = Process.Start(info)!;
        await kill.WaitForExitAsync(ct).WaitAsync(TimeSpan.FromSeconds(10), ct);
    }

    /// <summary>Every process below <paramref name="root"/>, from /proc (field 4 of /proc/PID/stat is the parent).</summary>
    private static List<int> Descendants(int root)
    {
        var parents = new Dictionary<int, int>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid))
                continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(directory, "stat"));
                // The command name (field 2) may hold spaces and parentheses: read after the last ')'.
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                parents[pid] = int.Parse(fields[1], CultureInfo.InvariantCulture);
            }
            catch (IOException)
            {
                // The process ended while we looked.
            }
        }

        var found = new List<int>();
        var queue = new Queue<int>([root]);
        while (queue.TryDequeue(out var parent))
        {
            foreach (var (pid, ppid) in parents)
            {
                if (ppid == parent)
                {
                    found.Add(pid);
                    queue.Enqueue(pid);
                }
            }
        }
        return found;
    }
}
