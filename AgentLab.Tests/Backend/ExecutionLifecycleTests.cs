using System.Net;
using System.Text.Json;
using AgentLab.Backend.Data;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;

namespace AgentLab.Tests.Backend;

/// <summary>Record, then run; async with a bounded queue; reading executions back. Real PostgreSQL, fake LabService.</summary>
public sealed class ExecutionLifecycleTests : BackendTestBase
{
    private const string SimpleBody = """{"prompt": "Dime 3 números primos", "model": "mistral7b"}""";

    [Fact]
    public async Task Execute_Sync_RecordsTheExecutionAndGetReturnsTheSameResult()
    {
        var client = Backend();

        var answer = await JsonAsync(await PostJsonAsync(client, SimpleBody));
        var id = answer.GetProperty("execution_id").GetString()!;
        var read = await client.GetAsync($"/api/v1/executions/{id}", Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        var stored = await JsonAsync(read);
        Assert.Equal("completed", stored.GetProperty("status").GetString());
        Assert.Equal(answer.GetProperty("output").GetString(), stored.GetProperty("output").GetString());
        Assert.Equal(answer.GetProperty("metrics").ToString(), stored.GetProperty("metrics").ToString());
        Assert.Equal(answer.GetProperty("flow").ToString(), stored.GetProperty("flow").ToString());
        await using var db = Database.CreateContext();
        var row = await db.Executions.AsNoTracking().SingleAsync(Ct);
        Assert.Equal("sync", row.Mode);
        Assert.Equal("mistral:7b", row.Model);
        Assert.Equal("simulator", row.ModelServer);
        Assert.Contains("Dime 3 números primos", row.Request, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Execute_SyncModelFailure_ProblemAndTheFailureIsStored()
    {
        Lab.Inference = FakeLabService.Problem(502, "model_error", "Model failure", "model crashed: out of memory");
        var client = Backend();

        var problem = await AssertProblemAsync(await PostJsonAsync(client, SimpleBody), 502, "model_error");
        var id = problem.GetProperty("execution_id").GetString();
        var stored = await JsonAsync(await client.GetAsync($"/api/v1/executions/{id}", Ct).WaitAsync(Bound, Ct));

        Assert.Equal("failed", stored.GetProperty("status").GetString());
        Assert.Equal("model_error", stored.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("model crashed: out of memory", stored.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal("failed", stored.GetProperty("flow").GetProperty("nodes")[0].GetProperty("status").GetString());
    }

    [Fact]
    public async Task Execute_SyncModelTimeout_StoredAsTimedOut()
    {
        Lab.Inference = FakeLabService.Problem(504, "model_timeout", "Model timeout", "no token within 30 s");
        var client = Backend();

        var problem = await AssertProblemAsync(await PostJsonAsync(client, SimpleBody), 504, "model_timeout");

        var stored = await ReadAsync(client, problem.GetProperty("execution_id").GetString()!);
        Assert.Equal("timed_out", stored.GetProperty("status").GetString());
    }

    [Theory]
    [InlineData("""{"prompt": "Dime 3 números primos", "mode": "async"}""", null)]
    [InlineData("""{"prompt": "Dime 3 números primos"}""", "respond-async")]
    public async Task Execute_Async_AcceptedWithLocationThenCompletesInTheBackground(string json, string? prefer)
    {
        var release = new TaskCompletionSource();
        Lab.Inference = async ctx => { await release.Task.WaitAsync(Bound, ctx.RequestAborted); await FakeLabService.Json(200, FakeLabService.InferenceJson)(ctx); };
        var client = Backend();
        if (prefer is not null)
            client.DefaultRequestHeaders.Add("Prefer", prefer);

        var response = await PostJsonAsync(client, json);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var accepted = await JsonAsync(response);
        var id = accepted.GetProperty("execution_id").GetString()!;
        Assert.Equal($"/api/v1/executions/{id}", response.Headers.Location?.ToString());
        Assert.Equal("queued", accepted.GetProperty("status").GetString());
        release.SetResult();
        var finished = await PollUntilAsync(client, id, s => s == "completed");
        Assert.Equal("2, 3 y 5", finished.GetProperty("output").GetString());
        Assert.Equal(1, finished.GetProperty("attempt").GetInt32());
    }

    [Fact]
    public async Task Execute_AsyncQueueFull_TooManyRequestsWithRetryAfterAndNothingRecorded()
    {
        Lab.Inference = FakeLabService.Hang;
        var client = Backend(new Dictionary<string, string?>
        {
            ["Execution:QueueCapacity"] = "1", ["Execution:MaxConcurrency"] = "1", ["Execution:QueueFullRetryAfterSeconds"] = "7",
        });
        const string body = """{"prompt": "p", "mode": "async"}""";

        // The first is taken by the one worker (and hangs there), the second waits in the one slot.
        Assert.Equal(HttpStatusCode.Accepted, (await PostJsonAsync(client, body)).StatusCode);
        await WaitForAsync(() => Lab.Received.Count(r => r.Path == "/inference/") == 1);
        Assert.Equal(HttpStatusCode.Accepted, (await PostJsonAsync(client, body)).StatusCode);
        var refused = await PostJsonAsync(client, body);

        await AssertProblemAsync(refused, 429, "queue_full");
        Assert.Equal(TimeSpan.FromSeconds(7), refused.Headers.RetryAfter?.Delta);
        await using var db = Database.CreateContext();
        Assert.Equal(2, await db.Executions.CountAsync(Ct));
    }

    [Theory]
    [InlineData("not-a-guid")]
    [InlineData("0193a4b2-1111-7222-8333-944455556666")]
    public async Task GetExecution_Unknown_NotFoundWithCode(string id)
    {
        var client = Backend();

        var response = await client.GetAsync($"/api/v1/executions/{id}", Ct).WaitAsync(Bound, Ct);

        var problem = await AssertProblemAsync(response, 404, "execution_not_found");
        Assert.Contains(id, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Execute_SyncClientDisconnects_StoredAsCancelledAndTheModelCallStopped()
    {
        var labCallEnded = new TaskCompletionSource();
        Lab.Inference = async ctx =>
        {
            try { await Task.Delay(Timeout.InfiniteTimeSpan, ctx.RequestAborted); }
            catch (OperationCanceledException) { labCallEnded.TrySetResult(); }
        };
        var client = Backend();
        using var leaving = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        var post = client.PostAsync("/api/v1/execute", new StringContent(SimpleBody, System.Text.Encoding.UTF8, "application/json"), leaving.Token);
        await WaitForAsync(() => Lab.Received.Any(r => r.Path == "/inference/"));
        await leaving.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => post);

        await labCallEnded.Task.WaitAsync(Bound, Ct);
        await using var db = Database.CreateContext();
        var row = await WaitForRowAsync(db, r => r.Status == ExecutionStatus.Cancelled);
        Assert.Equal("client_disconnected", row.ErrorCode);
    }

    private static async Task<JsonElement> ReadAsync(HttpClient client, string id) =>
        await JsonAsync(await client.GetAsync($"/api/v1/executions/{id}", Ct).WaitAsync(Bound, Ct));

    /// <summary>Reads the execution until its status satisfies <paramref name="done"/>, bounded.</summary>
    internal static async Task<JsonElement> PollUntilAsync(HttpClient client, string id, Func<string, bool> done)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (true)
        {
            var body = await ReadAsync(client, id);
            if (done(body.GetProperty("status").GetString()!))
                return body;
            Assert.True(DateTime.UtcNow < deadline, $"execution {id} still {body.GetProperty("status")} after {Bound.TotalSeconds} s");
            await Task.Delay(50, Ct);
        }
    }

    internal static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in time");
            await Task.Delay(20, Ct);
        }
    }

    private static async Task<ExecutionRecord> WaitForRowAsync(AgentLabDb db, Func<ExecutionRecord, bool> condition)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (true)
        {
            var row = await db.Executions.AsNoTracking().SingleAsync(Ct);
            if (condition(row))
                return row;
            Assert.True(DateTime.UtcNow < deadline, $"row still {row.Status}");
            await Task.Delay(50, Ct);
        }
    }
}
