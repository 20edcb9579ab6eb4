using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace AgentLab.AppHost.Infrastructure;

/// <summary>The result of a short helper command (initdb, psql, dotnet tool restore).</summary>
internal sealed record CommandResult(int ExitCode, string Output)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>The last lines of the output, for error messages that must stay readable.</summary>
    public string Tail(int lines = 15) =>
        string.Join(Environment.NewLine, Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).TakeLast(lines));
}

/// <summary>Runs short-lived helper commands to completion with a time limit; never leaves one running.</summary>
internal static class CommandRunner
{
    /// <summary>Runs <paramref name="fileName"/>; returns null when the program does not exist.</summary>
    public static async Task<CommandResult?> TryRunAsync(string fileName, IEnumerable<string> arguments, TimeSpan timeout,
        CancellationToken ct, string? workingDirectory = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
            info.ArgumentList.Add(argument);
        if (workingDirectory is not null)
            info.WorkingDirectory = workingDirectory;
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            info.Environment[key] = value;

        using var process = new Process { StartInfo = info };
        var output = new StringBuilder();
        // stdout and stderr interleave into one transcript: what the user needs when the command fails.
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        try
        {
            process.Start();
        }
        catch (Win32Exception)
        {
            return null;
        }
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
            ct.ThrowIfCancellationRequested();
            lock (output)
                return new CommandResult(-1, output + $"{Environment.NewLine}(stopped after {timeout.TotalSeconds:0.#} s)");
        }
        lock (output)
            return new CommandResult(process.ExitCode, output.ToString());
    }

    /// <summary>The first executable called <paramref name="name"/> on PATH, or null.</summary>
    public static string? FindOnPath(string name)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
                return candidate;
            if (OperatingSystem.IsWindows() && File.Exists(candidate + ".exe"))
                return candidate + ".exe";
        }
        return null;
    }
}
