using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using AgentLab.AppHost.Hosting;
using static AgentLab.Tests.AppHost.RunnerTestKit;

namespace AgentLab.Tests.AppHost;

public sealed class RunnerOrphanTests
{
    [Fact]
    public async Task Launcher_HostKilledWithSigkill_ChildDoesNotOutliveIt()
    {
        var ct = TestContext.Current.CancellationToken;
        var pidFile = Path.Combine(Path.GetTempPath(), $"agentlab-orphan-{Guid.NewGuid():N}.pid");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(AppHostDll());
        info.ArgumentList.Add(LauncherSelfTest.Verb);
        info.ArgumentList.Add(pidFile);
        using var host = Process.Start(info)!;
        int child;
        try
        {
            await WaitUntilAsync(() => File.Exists(pidFile) || host.HasExited, "the host to start its child", ct);
            if (host.HasExited)
                Assert.Fail("the self-test host exited: " + await host.StandardError.ReadToEndAsync(ct));
            child = int.Parse((await File.ReadAllTextAsync(pidFile, ct)).Split(' ')[0], CultureInfo.InvariantCulture);
            Assert.True(IsAlive(child), "the child should run while its host runs");

            host.Kill(); // SIGKILL: the host gets no chance to clean up

            await host.WaitForExitAsync(ct).WaitAsync(Bound, ct);
            await WaitUntilAsync(() => !IsAlive(child), $"child {child} to be gone", ct);
        }
        finally
        {
            if (!host.HasExited)
                host.Kill(entireProcessTree: true);
            File.Delete(pidFile);
        }

        Assert.False(IsAlive(child));
    }

    private static string AppHostDll()
    {
        var configuration = typeof(RunnerOrphanTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var dll = Path.Combine(dir.FullName, "AgentLab.AppHost", "bin", configuration, "net10.0", "AgentLab.AppHost.dll");
            if (File.Exists(dll))
                return dll;
        }
        throw new FileNotFoundException($"AgentLab.AppHost.dll ({configuration}) not found: build AgentLab.AppHost first.");
    }
}
