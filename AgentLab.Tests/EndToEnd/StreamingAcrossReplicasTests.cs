using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace AgentLab.Tests.EndToEnd;

/// <summary>
/// Two Backend processes on one database and one Redis (issue 6, "Across replicas"): an execution runs on replica A
/// while its WebSocket client is on replica B, and a cancel posted to B stops the run A drives.
/// </summary>
public sealed class StreamingAcrossReplicasTests(ReplicaLab lab) : IClassFixture<ReplicaLab>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task WebSocketOnOtherReplica_OrchestratorRunInProgress_SeesExactlyTheStoredLog()
    {
        await using var replicas = await lab.StartReplicasAsync(Ct);
        // Analyzer and executor only: the simulated validator may reject the answer, and this run must complete.
        var id = await replicas.SubmitAsyncToA(
            $$"""{"prompt": "Explain event sourcing in two sentences", "model": "{{ReplicaLab.StreamingModel}}", "execution_type": "orchestrator", "mode": "async", "agents": ["analyzer", "executor"], "parameters": {"max_tokens": 40} }""", Ct);
        await using var socket = await EventSocket.ConnectAsync(replicas.ProcessB.BaseAddress, id, Ct);
        await socket.FirstFrame.WaitAsync(ReplicaLab.Bound, Ct);
        // Connected while the run is still going on A, so most of what B sends comes live through Redis.
        var statusAtConnect = (await GetAsync(replicas.A, id)).GetProperty("status").GetString();

        var close = await socket.ClosedAsync(ReplicaLab.Bound, Ct);
        var live = socket.Received;
        var replay = await EventReplay.ReadSseAsync(replicas.A, id, Ct);
        var stored = await replicas.StoredEventsAsync(id, Ct);

        Assert.True(statusAtConnect is "queued" or "running", $"the run was already {statusAtConnect} when B's client connected; {replicas.RecentOutput}");
        Assert.Equal(WebSocketCloseStatus.NormalClosure, close);
        Assert.Equal(Enumerable.Range(1, live.Count).Select(i => (long)i), live.Select(e => e.Seq));
        Assert.True(live[^1].Type == "execution_completed", $"the stream ended with {live[^1].Json}{Environment.NewLine}{replicas.RecentOutput}");
        Assert.Contains(live, e => e.Type == "node_started");
        Assert.Contains(live, e => e.Type == "node_completed");
        Assert.True(live.Count(e => e.Type == "token") >= 3, $"expected token chunks from several nodes, got: {string.Join(", ", live.Select(e => e.Type))}");
        // Exactly the stored log: same events, same order, same content as A replays after the end.
        Assert.Equal(stored, live.Select(e => (e.Seq, e.Type, e.Node)));
        Assert.Equal(live.Count, replay.Count);
        for (var i = 0; i < live.Count; i++)
        {
            Assert.Equal(live[i].Seq.ToString(System.Globalization.CultureInfo.InvariantCulture), replay[i].EventId);
            Assert.Equal(live[i].Type, replay[i].EventType);
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(live[i].Json), JsonNode.Parse(replay[i].Data)),
                $"seq {live[i].Seq}: live on B {live[i].Json}{Environment.NewLine}replayed by A {replay[i].Data}");
        }
    }

    [Fact]
    public async Task CancelOnOtherReplica_RunDrivenByA_StopsTheRunAndEndsTheStreamCancelled()
    {
        await using var replicas = await lab.StartReplicasAsync(Ct);
        var abortedBefore = lab.Simulator.Stats.AbortedRequests;
        var id = await replicas.SubmitAsyncToA(
            $$"""{"prompt": "Write a long essay about queues", "model": "{{ReplicaLab.LongModel}}", "execution_type": "orchestrator", "mode": "async", "parameters": {"max_tokens": 200} }""", Ct);
        await using var socket = await EventSocket.ConnectAsync(replicas.ProcessB.BaseAddress, id, Ct);
        // A token on B: the run is inside a model call on A.
        await socket.FirstToken.WaitAsync(ReplicaLab.Bound, Ct);

        using var cancel = await replicas.B.PostAsync($"/api/v1/executions/{id}/cancel", null, Ct).WaitAsync(ReplicaLab.Bound, Ct);
        var cancelBody = await cancel.Content.ReadAsStringAsync(Ct);
        var close = await socket.ClosedAsync(ReplicaLab.Bound, Ct);
        var seen = socket.Received;
        var onA = await GetAsync(replicas.A, id);
        // The model call A was making is aborted (LabService cancels it when A drops the request), and nothing runs on.
        await WaitUntilAsync(() => lab.Simulator.Stats.AbortedRequests > abortedBefore && lab.Simulator.Stats.InFlight == 0,
            "the simulator to see the model call aborted and nothing in flight");
        var stored = await replicas.StoredEventsAsync(id, Ct);

        Assert.True(cancel.StatusCode == HttpStatusCode.OK, $"cancel answered {(int)cancel.StatusCode}: {cancelBody}{Environment.NewLine}{replicas.RecentOutput}");
        Assert.Equal("cancelled", JsonDocument.Parse(cancelBody).RootElement.GetProperty("status").GetString());
        Assert.Equal(WebSocketCloseStatus.NormalClosure, close);
        Assert.Equal("execution_cancelled", seen[^1].Type);
        Assert.Equal(Enumerable.Range(1, seen.Count).Select(i => (long)i), seen.Select(e => e.Seq));
        Assert.Equal("cancelled", onA.GetProperty("status").GetString());
        // No event after the cancel: the stored log ends where the stream did, however long the run kept going.
        Assert.Equal(seen.Select(e => (e.Seq, e.Type, e.Node)), stored);
        Assert.DoesNotContain(stored, e => e.Type == "execution_completed");
    }

    private static async Task<JsonElement> GetAsync(HttpClient backend, Guid id)
    {
        using var response = await backend.GetAsync($"/api/v1/executions/{id}", Ct).WaitAsync(ReplicaLab.Bound, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement.Clone();
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        using var bound = new CancellationTokenSource(ReplicaLab.Bound);
        while (!condition())
        {
            if (bound.IsCancellationRequested)
                Assert.Fail($"Timed out after {ReplicaLab.Bound.TotalSeconds} s waiting for {what}.");
            await Task.Delay(50, Ct);
        }
    }
}
