using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace AgentLab.AppHost.Hosting;

/// <summary>
/// Starts resource processes so that none outlives the AppHost. Each child runs in its own process group (through
/// util-linux <c>setsid</c>, which execs in place, so the PID we hold is the group id): a graceful stop signals the
/// whole group (PostgreSQL's backends, a shell's children) and Ctrl+C in a terminal reaches only the AppHost, which
/// then stops the services in reverse order. A watchdog (<c>/bin/sh</c> reading a pipe whose only writer is the
/// AppHost) kills every registered group when that pipe closes, which the kernel does however the AppHost ends,
/// SIGKILL included. PR_SET_PDEATHSIG was rejected: it fires when the forking *thread* exits, and .NET forks from
/// thread-pool threads that retire when idle.
/// </summary>
public sealed partial class ProcessLauncher : IDisposable
{
    // Ignores the terminal's signals (Ctrl+C reaches the whole foreground group): its only exit is EOF on stdin.
    private const string WatchdogScript = """
        # dash: no "--" in kill, and a negative target is a process group.
        trap '' INT TERM HUP QUIT
        targets=' '
        while read -r verb target; do
          case "$verb" in
            add) targets="$targets$target " ;;
            remove) kept=' '; for t in $targets; do [ "$t" = "$target" ] || kept="$kept$t "; done; targets=$kept ;;
          esac
        done
        [ -z "${targets# }" ] && exit 0
        for t in $targets; do kill -TERM "$t" 2>/dev/null; done
        sleep 2
        for t in $targets; do kill -KILL "$t" 2>/dev/null; done
        """;

    private const int SigKill = 9;
    private const int SigTerm = 15;
    private const int SigInt = 2;

    private readonly Lock _gate = new();
    private readonly bool _useProcessGroups;
    private Process? _watchdog;
    private bool _disposed;

    public ProcessLauncher()
    {
        _useProcessGroups = OperatingSystem.IsLinux() && File.Exists(SetsidPath);
    }

    private static string SetsidPath => "/usr/bin/setsid";

    /// <summary>PID of the watchdog, once a child has been started (for diagnostics and tests).</summary>
    public int? WatchdogId => _watchdog?.Id;

    /// <summary>Starts <paramref name="spec"/>; <paramref name="onLine"/> gets each output line (text, isError).</summary>
    public SupervisedProcess Start(ProcessSpec spec, Action<string, bool> onLine)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var info = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
            UseShellExecute = false,
        };
        if (spec.WorkingDirectory is { } dir)
            info.WorkingDirectory = dir;
        if (_useProcessGroups)
        {
            info.FileName = SetsidPath;
            info.ArgumentList.Add(spec.FileName);
        }
        else
        {
            info.FileName = spec.FileName;
        }
        foreach (var arg in spec.Arguments)
            info.ArgumentList.Add(arg);
        foreach (var (key, value) in spec.Environment)
            info.Environment[key] = value;

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) onLine(e.Data, false); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) onLine(e.Data, true); };
        try
        {
            process.Start();
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            process.Dispose();
            throw new LabStartupException(
                $"could not start '{spec.FileName}': {ex.Message}. Check that it is installed and on the PATH.", ex);
        }
        // Children read nothing from the AppHost: an immediate EOF beats a stdin shared with the terminal.
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var target = _useProcessGroups ? "-" + process.Id : process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        Register("add", target);
        return new SupervisedProcess(this, process, _useProcessGroups, target, spec.StopSignal);
    }

    internal void Unregister(string target) => Register("remove", target);

    private void Register(string verb, string target)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
            return;
        lock (_gate)
        {
            if (_disposed)
                return;
            _watchdog ??= StartWatchdog();
            try
            {
                _watchdog.StandardInput.WriteLine($"{verb} {target}");
                _watchdog.StandardInput.Flush();
            }
            catch (IOException)
            {
                // The watchdog died (someone killed it): start a new one that knows nothing yet; the runner still
                // stops its children itself. Registering again keeps this child covered.
                _watchdog.Dispose();
                _watchdog = StartWatchdog();
                _watchdog.StandardInput.WriteLine($"{verb} {target}");
                _watchdog.StandardInput.Flush();
            }
        }
    }

    private static Process StartWatchdog()
    {
        var info = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardInput = true,
            // Never read: the script prints nothing, and an inherited stdout would hold a caller's pipe open.
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(WatchdogScript);
        var watchdog = Process.Start(info) ?? throw new LabStartupException("could not start the process watchdog (/bin/sh).");
        watchdog.StandardInput.AutoFlush = true;
        return watchdog;
    }

    internal static void Signal(int pidOrNegativeGroup, bool kill, StopSignal stop = StopSignal.Terminate)
    {
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())
            _ = SysKill(pidOrNegativeGroup, kill ? SigKill : stop == StopSignal.Interrupt ? SigInt : SigTerm);
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SysKill(int pid, int signal);

    /// <summary>Closes the watchdog's pipe: it kills whatever is still registered and exits.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
                return;
            _disposed = true;
            if (_watchdog is null)
                return;
            try
            {
                _watchdog.StandardInput.Close();
                _watchdog.WaitForExit(TimeSpan.FromSeconds(5));
            }
            catch (IOException)
            {
                // already gone
            }
            _watchdog.Dispose();
        }
    }
}

/// <summary>One started child process: its exit, and a graceful stop (SIGTERM to its group, bounded wait, SIGKILL).</summary>
public sealed class SupervisedProcess : IDisposable
{
    private readonly ProcessLauncher _launcher;
    private readonly Process _process;
    private readonly bool _isGroup;
    private readonly string _target;
    private readonly StopSignal _stopSignal;

    internal SupervisedProcess(ProcessLauncher launcher, Process process, bool isGroup, string target, StopSignal stopSignal)
    {
        _stopSignal = stopSignal;
        _launcher = launcher;
        _process = process;
        _isGroup = isGroup;
        _target = target;
        Id = process.Id;
        Exited = WaitExitAsync();
    }

    public int Id { get; }

    /// <summary>What a graceful stop sends first.</summary>
    public StopSignal StopSignal => _stopSignal;

    /// <summary>Completes with the exit code once the process ended and its output was read to the end.</summary>
    public Task<int> Exited { get; }

    private async Task<int> WaitExitAsync()
    {
        await _process.WaitForExitAsync().ConfigureAwait(false);
        var code = _process.ExitCode;
        // Leftovers of the group (a grandchild that outlived its parent) go with it; then the watchdog forgets it.
        if (_isGroup)
            ProcessLauncher.Signal(-Id, kill: true);
        _launcher.Unregister(_target);
        return code;
    }

    /// <summary>Its stop signal (SIGTERM unless the spec says otherwise), wait up to <paramref name="grace"/>, then SIGKILL; returns when the process is gone.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (Exited.IsCompleted)
            return;
        ProcessLauncher.Signal(_isGroup ? -Id : Id, kill: false, _stopSignal);
        try
        {
            await Exited.WaitAsync(grace).ConfigureAwait(false);
            return;
        }
        catch (TimeoutException)
        {
            // did not stop in time: kill below
        }
        ProcessLauncher.Signal(_isGroup ? -Id : Id, kill: true);
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // exited meanwhile
        }
        await Exited.WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
    }

    public void Dispose() => _process.Dispose();
}
