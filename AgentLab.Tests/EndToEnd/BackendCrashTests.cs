using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using AgentLab.AppHost.Testing;

namespace AgentLab.Tests.EndToEnd;

/// <summary>
/// A Backend process killed (SIGKILL) in the middle of an async run: the AppHost restarts it, and the new process's
/// sweeper takes the execution over once the dead one's lease lapses and finishes it.
/// </summary>
public sealed class BackendCrashTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task BackendKilledMidRun_RestartedProcessTakesTheExecutionOverAndFinishesIt()
    {
        await using var host = await AgentLabTestHost.StartAsync(new Dictionary<string, string?>
        {
            // Slow tokens, so the run is still going when the Backend dies; short leases, so the takeover comes soon.
            ["AppHost:Environment:ollama:Simulator__TokenLatencyMs"] = "100",
            ["AppHost:Environment:backend:Execution__LeaseSeconds"] = "2",
            ["AppHost:Environment:backend:Execution__SweepIntervalSeconds"] = "0.5",
        }, Ct).WaitAsync(TimeSpan.FromMinutes(2), Ct);
        using var backend = host.CreateBackendClient();
        var resource = host.App.GetResource("backend");
        var restartsBefore = resource.RestartCount;

        using var submitted = await backend.PostAsync("/api/v1/execute", new StringContent(
            """{"prompt": "Explain leases in one paragraph", "model": "mistral7b", "mode": "async", "parameters": {"max_tokens": 40}}""",
            Encoding.UTF8, "application/json"), Ct).WaitAsync(Bound, Ct);
        Assert.Equal(HttpStatusCode.Accepted, submitted.StatusCode);
        var id = JsonDocument.Parse(await submitted.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("execution_id").GetString()!;
        await ExecutionPolling.PollAsync(backend, id, b => b.GetProperty("status").GetString() == "running", Bound);
        var killedPid = resource.ProcessId!.Value;
        Process.GetProcessById(killedPid).Kill(entireProcessTree: true);

        var finished = await ExecutionPolling.PollAsync(backend, id, b => b.GetProperty("status").GetString() is "completed" or "failed", Bound);

        Assert.Equal("completed", finished.GetProperty("status").GetString());
        Assert.Equal(2, finished.GetProperty("attempt").GetInt32());
        Assert.False(string.IsNullOrEmpty(finished.GetProperty("output").GetString()));
        Assert.Equal(restartsBefore + 1, resource.RestartCount);
        Assert.NotEqual(killedPid, resource.ProcessId);
    }
}
