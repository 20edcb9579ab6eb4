namespace AgentLab.AppHost.Hosting;

/// <summary>
/// Hidden mode for the no-orphans test: <c>AgentLab.AppHost --launcher-selftest &lt;pid-file&gt;</c> starts
/// <c>sleep 300</c> through the <see cref="ProcessLauncher"/>, writes the child's PID and waits to be killed.
/// The test SIGKILLs this process and checks that the child goes too.
/// </summary>
public static class LauncherSelfTest
{
    public const string Verb = "--launcher-selftest";

    public static async Task<int> RunAsync(string pidFile)
    {
        var launcher = new ProcessLauncher(); // never disposed: the point is dying without cleaning up
        var child = launcher.Start(new ProcessSpec("sleep", ["300"], new Dictionary<string, string>()), (_, _) => { });
        var temporary = pidFile + ".tmp";
        await File.WriteAllTextAsync(temporary, $"{child.Id} {launcher.WatchdogId}");
        File.Move(temporary, pidFile, overwrite: true); // the reader never sees a half-written file
        await Task.Delay(Timeout.Infinite);
        return 0;
    }
}
