using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using AgentLab.AppHost.Testing;
using Npgsql;

namespace AgentLab.Tests.EndToEnd;

/// <summary>
/// LabService killed (SIGKILL) in the middle of an orchestrator run: the AppHost restarts it, and the Backend
/// continues the run with the nodes it had persisted as <c>previous_nodes</c>, so no completed node runs twice.
/// </summary>
public sealed class LabServiceCrashTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task LabServiceKilledMidOrchestration_BackendResumesAndNoNodeRunsTwice()
    {
        await using var host = await AgentLabTestHost.StartAsync(new Dictionary<string, string?>
        {
            // Slow tokens, so the run is still going after its first node; patient resumes while LabService restarts.
            ["AppHost:Environment:ollama:Simulator__TokenLatencyMs"] = "60",
            ["AppHost:Environment:backend:Orchestrator__ResumeAttempts"] = "20",
        }, Ct).WaitAsync(TimeSpan.FromMinutes(2), Ct);
        using var backend = host.CreateBackendClient();
        var lab = host.App.GetResource("labservice");
        var restartsBefore = lab.RestartCount;

        using var submitted = await backend.PostAsync("/api/v1/execute", new StringContent(
            """{"prompt": "List three prime numbers", "model": "mistral7b", "execution_type": "orchestrator", "mode": "async", "agents": ["analyzer", "executor"], "parameters": {"max_tokens": 30}}""",
            Encoding.UTF8, "application/json"), Ct).WaitAsync(Bound, Ct);
        Assert.Equal(HttpStatusCode.Accepted, submitted.StatusCode);
        var id = JsonDocument.Parse(await submitted.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("execution_id").GetString()!;
        // The first node_completed is persisted: the run is past the analyzer and inside the executor.
        var midRun = await ExecutionPolling.PollAsync(backend, id, b => b.GetProperty("flow").GetProperty("nodes").GetArrayLength() >= 1
            || b.GetProperty("status").GetString() is not ("queued" or "running"), Bound);
        Assert.Equal("running", midRun.GetProperty("status").GetString());
        var killedPid = lab.ProcessId!.Value;
        Process.GetProcessById(killedPid).Kill(entireProcessTree: true);

        var finished = await ExecutionPolling.PollAsync(backend, id, b => b.GetProperty("status").GetString() is not ("queued" or "running"), Bound);

        Assert.True(finished.GetProperty("status").GetString() == "completed", finished.ToString());
        var names = finished.GetProperty("flow").GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("name").GetString()).ToList();
        Assert.Equal(["analyzer", "executor"], names);
        Assert.Equal(restartsBefore + 1, lab.RestartCount);
        Assert.NotEqual(killedPid, lab.ProcessId);
        // The analyzer completed before the kill: the finished run restored it rather than running it again.
        await using var db = new NpgsqlConnection(host.GetConnectionString("postgres"));
        await db.OpenAsync(Ct).WaitAsync(Bound, Ct);
        await using var query = new NpgsqlCommand(
            "SELECT node, position, COALESCE((run->>'restored')::boolean, false) FROM node_states WHERE execution_id = @id ORDER BY position", db);
        query.Parameters.AddWithValue("id", Guid.Parse(id));
        var rows = new List<(string Node, int Position, bool Restored)>();
        await using (var reader = await query.ExecuteReaderAsync(Ct).WaitAsync(Bound, Ct))
        {
            while (await reader.ReadAsync(Ct))
                rows.Add((reader.GetString(0), reader.GetInt32(1), reader.GetBoolean(2)));
        }
        Assert.Equal([("analyzer", 0, true), ("executor", 1, false)], rows);
    }
}
