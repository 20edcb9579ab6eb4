using System.Diagnostics;
using System.Globalization;
using AgentLab.AppHost.Hosting;

namespace AgentLab.Tests.AppHost;

/// <summary>Builders with fast timings, shell resources and bounded waits for the runner tests.</summary>
internal static class RunnerTestKit
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    public static LabAppBuilder NewBuilder(TextWriter output, params (string Key, string Value)[] settings)
    {
        var all = new Dictionary<string, string?>
        {
            ["AppHost:StartTimeoutSeconds"] = "15",
            ["AppHost:StopTimeoutSeconds"] = "5",
            ["AppHost:RestartDelayMilliseconds"] = "50",
            ["AppHost:MaxRestartDelayMilliseconds"] = "200",
            ["AppHost:HealthCheckIntervalSeconds"] = "1",
            // The dashboard (on by default) on free ports: runner tests run side by side.
            ["Dashboard:Port"] = "0",
            ["Dashboard:OtlpPort"] = "0",
        };
        foreach (var (key, value) in settings)
            all[key] = value;
        return LabAppBuilder.Create(all, output);
    }

    /// <summary>A resource that runs <paramref name="script"/> in /bin/sh with the environment the runner built.</summary>
    public static Func<ResourceContext, ProcessSpec> Sh(string script) =>
        context => new ProcessSpec("/bin/sh", ["-c", script], context.Environment);

    public static async Task WaitUntilAsync(Func<bool> condition, string what, CancellationToken ct)
    {
        var waited = Stopwatch.StartNew();
        while (!condition())
        {
            if (waited.Elapsed > Bound)
                throw new TimeoutException($"Still waiting after {Bound.TotalSeconds} s for: {what}");
            await Task.Delay(20, ct);
        }
    }

    public static bool Texts(LabResource resource, string text) =>
        resource.Log.Snapshot().Any(l => l.Text == text);

    /// <summary>True while the PID names a live process (a zombie waiting for its reaper counts as gone).</summary>
    public static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            // "pid (comm) S ...": the state follows the last ')'.
            var state = stat[(stat.LastIndexOf(')') + 2)..][0];
            return state != 'Z' && state != 'X';
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }
}
