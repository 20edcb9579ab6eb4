using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using AgentLab.AppHost.Hosting;
using static AgentLab.Tests.AppHost.RunnerTestKit;
using static AgentLab.Tests.AppHost.Dashboard.DashboardWebKit;

namespace AgentLab.Tests.AppHost.Dashboard;

public sealed class ResourceActionsTests
{
    [Fact]
    public async Task List_LabOfExecutables_ShowsKindStateEndpointUptimeAndActions()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter());
        var web = builder.AddExecutable("web", Sh(UntilTerm)).WithHttpEndpoint();
        builder.AddConnectionString("db", "Host=db.example;Password=hunter2-secret");
        await using var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        using var client = Client(app);

        var listed = await ResourceAsync(client, "web", ct);
        var external = await ResourceAsync(client, "db", ct);

        Assert.Equal("executable", listed.GetProperty("kind").GetString());
        Assert.Equal("running", listed.GetProperty("state").GetString());
        Assert.Equal("healthy", listed.GetProperty("health").GetString());
        Assert.Equal($"http://127.0.0.1:{web.Resource.Port}", listed.GetProperty("endpoint").GetString());
        Assert.Equal(0, listed.GetProperty("restarts").GetInt32());
        Assert.True(listed.GetProperty("uptime_seconds").GetDouble() >= 0);
        Assert.True(listed.TryGetProperty("started_at", out _));
        Assert.Equal(web.Resource.ProcessId, listed.GetProperty("process_id").GetInt32());
        Assert.Equal(["stop", "restart"], Actions(listed));
        Assert.Equal("external", external.GetProperty("kind").GetString());
        Assert.Empty(Actions(external));
        Assert.False(external.TryGetProperty("endpoint", out _));
        Assert.DoesNotContain("hunter2", external.ToString());
    }

    [Fact]
    public async Task Stop_WhileStarting_LabStartCompletesAndDependentsWaitUntilItIsStartedAgain()
    {
        var ct = TestContext.Current.CancellationToken;
        var ready = false;
        var builder = NewBuilder(new StringWriter());
        var db = builder.AddExecutable("db", Sh(UntilTerm)).WithReadinessProbe(_ => Task.FromResult(Volatile.Read(ref ready)));
        var api = builder.AddExecutable("api", Sh(UntilTerm)).WaitFor(db);
        var web = builder.AddExecutable("web", Sh(UntilTerm)).WaitFor(api);
        await using var app = builder.Build();
        var starting = app.StartAsync(ct);
        await WaitUntilAsync(() => db.Resource.State == ResourceState.Starting && app.Dashboard?.Url is not null, "db starting", ct);
        using var client = Client(app);

        using var stop = await client.SendAsync(Post("api/resources/db/stop"), ct).WaitAsync(Bound, ct);
        await starting.WaitAsync(Bound, ct); // nothing failed: the lab's start does not wait for what the user stopped
        // The dependents' loops say why they wait on their own schedule, next to the lab's start completing.
        await WaitUntilAsync(() => api.Resource.Message is not null && web.Resource.Message is not null, "the dependents' messages", ct);
        var apiHeld = await ResourceAsync(client, "api", ct);
        var webHeld = await ResourceAsync(client, "web", ct);
        Volatile.Write(ref ready, true);
        using var start = await client.SendAsync(Post("api/resources/db/start"), ct).WaitAsync(Bound, ct);
        await WaitUntilAsync(() => web.Resource.State == ResourceState.Running, "web running after db started again", ct);
        // Running is decided at process start here (no probe): its first line may come a moment later.
        await WaitUntilAsync(() => api.Resource.Log.Snapshot().Any(l => l.Text.StartsWith("up ", StringComparison.Ordinal)), "api's first line", ct);

        Assert.Equal(HttpStatusCode.Accepted, stop.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
        Assert.Equal("waiting", apiHeld.GetProperty("state").GetString());
        Assert.Equal("waiting: db was stopped from the dashboard before it was ready; start it to go on", apiHeld.GetProperty("message").GetString());
        Assert.Equal("waiting", webHeld.GetProperty("state").GetString());
        Assert.Contains("db was stopped", webHeld.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(ResourceState.Running, db.Resource.State);
        Assert.Equal(ResourceState.Running, api.Resource.State);
        Assert.Null(api.Resource.Message);
        Assert.Single(api.Resource.Log.Snapshot(), l => l.Text.StartsWith("up ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Restart_WhileStarting_TheNewProcessCompletesTheLabStart()
    {
        var ct = TestContext.Current.CancellationToken;
        var ready = false;
        var builder = NewBuilder(new StringWriter());
        var db = builder.AddExecutable("db", Sh(UntilTerm)).WithReadinessProbe(_ => Task.FromResult(Volatile.Read(ref ready)));
        var api = builder.AddExecutable("api", Sh(UntilTerm)).WaitFor(db);
        await using var app = builder.Build();
        var starting = app.StartAsync(ct);
        await WaitUntilAsync(() => db.Resource is { State: ResourceState.Starting, ProcessId: not null } && app.Dashboard?.Url is not null, "db starting", ct);
        var firstPid = db.Resource.ProcessId!.Value;
        using var client = Client(app);

        using var restart = await client.SendAsync(Post("api/resources/db/restart"), ct).WaitAsync(Bound, ct);
        Volatile.Write(ref ready, true);
        await starting.WaitAsync(Bound, ct);

        Assert.Equal(HttpStatusCode.Accepted, restart.StatusCode);
        Assert.NotEqual(firstPid, db.Resource.ProcessId);
        Assert.False(IsAlive(firstPid));
        Assert.Equal(ResourceState.Running, api.Resource.State);
    }

    [Theory]
    [InlineData("db (Host=db.example;Password=hunter2;Database=x) did not answer", "db (Host=db.example;Password=***;Database=x) did not answer")]
    [InlineData("Username=u; PWD = hunter2)", "Username=u; PWD=***)")]
    [InlineData("exited with code 3; restart 1 in 0.05 s", "exited with code 3; restart 1 in 0.05 s")]
    public void Message_WithAConnectionStringPassword_IsRedacted(string message, string shown)
    {
        var redacted = AgentLab.AppHost.Dashboard.ResourcesApi.Redact(message);

        Assert.Equal(shown, redacted);
    }

    [Fact]
    public async Task Stop_RunningResource_ExitsKillsTheProcessAndStaysDown()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter());
        var web = builder.AddExecutable("web", Sh(UntilTerm));
        var dependent = builder.AddExecutable("dependent", Sh(UntilTerm)).WaitFor(web);
        await using var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        await WaitUntilAsync(() => Texts(web.Resource, $"up {web.Resource.ProcessId}"), "web's trap set", ct);
        var pid = web.Resource.ProcessId!.Value;
        using var client = Client(app);

        using var response = await client.SendAsync(Post("api/resources/web/stop"), ct).WaitAsync(Bound, ct);
        var answered = await JsonAsync(response, ct);
        // Longer than several restart delays (50-200 ms here): a restart would have happened by now.
        await Task.Delay(TimeSpan.FromSeconds(1), ct);
        var later = await ResourceAsync(client, "web", ct);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("exited", answered.GetProperty("state").GetString());
        Assert.False(IsAlive(pid));
        Assert.Equal("exited", later.GetProperty("state").GetString());
        Assert.Equal(["start"], Actions(later));
        Assert.False(later.TryGetProperty("uptime_seconds", out _));
        Assert.Equal(0, later.GetProperty("restarts").GetInt32());
        Assert.Single(web.Resource.Log.Snapshot(), l => l.Text.StartsWith("up ", StringComparison.Ordinal));
        Assert.Equal(ResourceState.Running, dependent.Resource.State);
    }

    [Fact]
    public async Task Start_AfterStop_RunsAgainWithANewProcess()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter());
        var web = builder.AddExecutable("web", Sh(UntilTerm));
        await using var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        var first = web.Resource.ProcessId!.Value;
        using var client = Client(app);
        using var stopped = await client.SendAsync(Post("api/resources/web/stop"), ct).WaitAsync(Bound, ct);

        using var response = await client.SendAsync(Post("api/resources/web/start"), ct).WaitAsync(Bound, ct);
        await WaitUntilAsync(() => web.Resource.State == ResourceState.Running, "web running again", ct);
        var listed = await ResourceAsync(client, "web", ct);

        Assert.Equal(HttpStatusCode.Accepted, stopped.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var second = listed.GetProperty("process_id").GetInt32();
        Assert.NotEqual(first, second);
        Assert.True(IsAlive(second));
        Assert.False(IsAlive(first));
        Assert.Equal(0, listed.GetProperty("restarts").GetInt32());
    }

    [Fact]
    public async Task Restart_RunningResource_ReplacesTheProcessWithoutCountingACrash()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter());
        var web = builder.AddExecutable("web", Sh(UntilTerm));
        await using var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        var first = web.Resource.ProcessId!.Value;
        using var client = Client(app);

        using var response = await client.SendAsync(Post("api/resources/web/restart"), ct).WaitAsync(Bound, ct);
        await WaitUntilAsync(() => web.Resource.State == ResourceState.Running && web.Resource.ProcessId != first, "a new process running", ct);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.False(IsAlive(first));
        Assert.True(IsAlive(web.Resource.ProcessId!.Value));
        Assert.Equal(0, web.Resource.RestartCount);
    }

    [Fact]
    public async Task Crash_ProcessKilledFromOutside_IsRestartedAndCounted()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter());
        var web = builder.AddExecutable("web", Sh(UntilTerm));
        await using var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        var first = web.Resource.ProcessId!.Value;
        using var client = Client(app);

        using (var process = Process.GetProcessById(first))
            process.Kill();
        await WaitUntilAsync(() => web.Resource.State == ResourceState.Running && web.Resource.ProcessId != first, "the crash restart", ct);
        var listed = await ResourceAsync(client, "web", ct);

        Assert.Equal(1, listed.GetProperty("restarts").GetInt32());
        Assert.NotEqual(first, listed.GetProperty("process_id").GetInt32());
    }

    [Fact]
    public async Task Restart_ThreeAtOnce_LeaveOneProcessRunning()
    {
        var ct = TestContext.Current.CancellationToken;
        var output = new StringWriter();
        var builder = NewBuilder(output);
        var web = builder.AddExecutable("web", Sh(UntilTerm));
        await using var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        using var client = Client(app);

        // Straight at the lab too: HTTP requests alone may arrive one after the other.
        var direct = Task.WhenAll(Task.Run(() => app.RestartResourceAsync("web"), ct), Task.Run(() => app.RestartResourceAsync("web"), ct));
        using var response = await client.SendAsync(Post("api/resources/web/restart"), ct).WaitAsync(Bound, ct);
        await direct.WaitAsync(Bound, ct);
        await WaitUntilAsync(() => web.Resource.State == ResourceState.Running, "web running", ct);
        // The runner names every process it starts (even one stopped before it printed anything): only the current may live.
        var pids = Regex.Matches(output.ToString(), @"web: started process (\d+)").Select(m => int.Parse(m.Groups[1].Value)).ToList();

        Assert.True(response.StatusCode is HttpStatusCode.Accepted or HttpStatusCode.Conflict, response.StatusCode.ToString());
        Assert.True(pids.Count >= 3, "the restarts did not all happen");
        Assert.Equal([web.Resource.ProcessId!.Value], pids.Where(IsAlive));
    }

    [Fact]
    public async Task Stop_ProcessIgnoringSigterm_ShowsStoppingAndOffersNothingUntilKilled()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter(), ("AppHost:StopTimeoutSeconds", "3"));
        var stubborn = builder.AddExecutable("stubborn", Sh("trap '' TERM; echo \"up $$\"; while true; do sleep 0.05; done"));
        await using var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        await WaitUntilAsync(() => Texts(stubborn.Resource, $"up {stubborn.Resource.ProcessId}"), "the trap set", ct);
        var pid = stubborn.Resource.ProcessId!.Value;
        using var client = Client(app);

        var stopping = app.StopResourceAsync("stubborn");
        await WaitUntilAsync(() => stubborn.Resource.Message?.StartsWith("stopping", StringComparison.Ordinal) == true, "the stop to begin", ct);
        var during = await ResourceAsync(client, "stubborn", ct);
        using var again = await client.SendAsync(Post("api/resources/stubborn/restart"), ct).WaitAsync(Bound, ct);
        await stopping.WaitAsync(Bound, ct);
        var after = await ResourceAsync(client, "stubborn", ct);

        Assert.Empty(Actions(during));
        Assert.StartsWith("stopping: SIGTERM sent", during.GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Equal("exited", after.GetProperty("state").GetString());
        Assert.Equal(["start"], Actions(after));
        Assert.False(IsAlive(pid));
    }

    [Fact]
    public async Task StopAsync_AfterUserStopAndStart_LeavesNoProcess()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter());
        var web = builder.AddExecutable("web", Sh(UntilTerm));
        var other = builder.AddExecutable("other", Sh(UntilTerm));
        var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        await app.StopResourceAsync("web").WaitAsync(Bound, ct);
        await app.StartResourceAsync("web").WaitAsync(Bound, ct);
        await WaitUntilAsync(() => web.Resource.State == ResourceState.Running, "web running again", ct);
        var pids = new[] { web.Resource.ProcessId!.Value, other.Resource.ProcessId!.Value };

        await app.StopAsync().WaitAsync(Bound, ct);

        Assert.All(pids, pid => Assert.False(IsAlive(pid), $"process {pid} outlived the lab"));
        Assert.Equal(ResourceState.Exited, web.Resource.State);
        await Assert.ThrowsAsync<ResourceActionException>(() => app.StartResourceAsync("web").WaitAsync(Bound, ct));
        await app.DisposeAsync();
    }

    [Fact]
    public async Task Actions_WrongNameStateOrHeader_AnswerTheirCodes()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter());
        builder.AddExecutable("web", Sh(UntilTerm));
        builder.AddConnectionString("db", "Host=db.example");
        await using var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        using var client = Client(app);

        using var unknown = await client.SendAsync(Post("api/resources/nope/stop"), ct).WaitAsync(Bound, ct);
        using var startRunning = await client.SendAsync(Post("api/resources/web/start"), ct).WaitAsync(Bound, ct);
        using var stopExternal = await client.SendAsync(Post("api/resources/db/stop"), ct).WaitAsync(Bound, ct);
        using var noHeader = await client.SendAsync(Post("api/resources/web/stop", withHeader: false), ct).WaitAsync(Bound, ct);

        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("resource_not_found", (await JsonAsync(unknown, ct)).GetProperty("code").GetString());
        Assert.Equal(HttpStatusCode.Conflict, startRunning.StatusCode);
        var conflict = await JsonAsync(startRunning, ct);
        Assert.Equal("action_not_available", conflict.GetProperty("code").GetString());
        Assert.Contains("restart", conflict.GetProperty("detail").GetString());
        Assert.Equal(HttpStatusCode.Conflict, stopExternal.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, noHeader.StatusCode);
        Assert.Equal("dashboard_header_required", (await JsonAsync(noHeader, ct)).GetProperty("code").GetString());
        Assert.Equal(ResourceState.Running, app.GetResource("web").State);
    }
}
