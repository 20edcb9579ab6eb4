using System.Net;
using System.Net.Sockets;
using AgentLab.AppHost.Hosting;
using static AgentLab.Tests.AppHost.RunnerTestKit;

namespace AgentLab.Tests.AppHost;

public sealed class RunnerTests
{
    private const string UntilTerm = "trap 'echo got-term; exit 0' TERM; echo up; while true; do sleep 0.05; done";

    [Fact]
    public async Task Start_WaitFor_DependentStartsOnlyAfterDependencyIsReady()
    {
        var ct = TestContext.Current.CancellationToken;
        var ready = false;
        var builder = NewBuilder(new StringWriter());
        var first = builder.AddExecutable("first", Sh(UntilTerm)).WithReadinessProbe(_ => Task.FromResult(Volatile.Read(ref ready)));
        var second = builder.AddExecutable("second", Sh(UntilTerm)).WaitFor(first);
        await using var app = builder.Build();

        var starting = app.StartAsync(ct);
        await WaitUntilAsync(() => Texts(first.Resource, "up"), "first to start", ct);
        var secondWhileFirstNotReady = second.Resource.State;
        var secondOutputWhileFirstNotReady = second.Resource.Log.Snapshot().Count;
        Volatile.Write(ref ready, true);
        await starting.WaitAsync(Bound, ct);

        Assert.Equal(ResourceState.Waiting, secondWhileFirstNotReady);
        Assert.Equal(0, secondOutputWhileFirstNotReady);
        Assert.Equal(ResourceState.Running, first.Resource.State);
        Assert.Equal(ResourceState.Running, second.Resource.State);
    }

    [Fact]
    public async Task Start_DependencyFailsToStart_ThrowsItsOutputAndNeverStartsTheDependent()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter());
        var broken = builder.AddExecutable("broken", Sh("echo boom-missing-config; exit 2"))
            .WithReadinessProbe(_ => Task.FromResult(false));
        var dependent = builder.AddExecutable("dependent", Sh(UntilTerm)).WaitFor(broken);
        await using var app = builder.Build();

        var error = await Assert.ThrowsAsync<LabStartupException>(() => app.StartAsync(ct).WaitAsync(Bound, ct));

        Assert.Contains("broken exited with code 2 while starting", error.Message);
        Assert.Contains("boom-missing-config", error.Message);
        Assert.Equal(ResourceState.Failed, broken.Resource.State);
        Assert.Empty(dependent.Resource.Log.Snapshot());
    }

    [Fact]
    public async Task Restart_ResourceThatExits_IsRestartedAndCounted()
    {
        var ct = TestContext.Current.CancellationToken;
        var output = new StringWriter();
        // A cap well above the 0.3 s it runs, so each crash counts as consecutive and the delay doubles.
        var builder = NewBuilder(output, ("AppHost:MaxRestartDelayMilliseconds", "2000"));
        var flaky = builder.AddExecutable("flaky", Sh("echo run; sleep 0.3; exit 3"));
        await using var app = builder.Build();

        await app.StartAsync(ct).WaitAsync(Bound, ct);
        await WaitUntilAsync(() => flaky.Resource.RestartCount >= 3, "three restarts", ct);

        Assert.True(flaky.Resource.Log.Snapshot().Count(l => l.Text == "run") >= 3);
        Assert.Contains("flaky: Running -> Restarting: exited with code 3; restart 1 in 0.05 s", output.ToString());
        Assert.Contains("restart 2 in 0.1 s", output.ToString());
    }

    [Theory]
    [InlineData(0, 50)]
    [InlineData(1, 100)]
    [InlineData(2, 200)]
    [InlineData(3, 200)]
    [InlineData(40, 200)]
    public void RestartDelay_ConsecutiveCrashes_DoublesUpToTheCap(int crashes, int expectedMilliseconds)
    {
        var options = new AppHostOptions { RestartDelayMilliseconds = 50, MaxRestartDelayMilliseconds = 200 };
        using var runtime = new LabRuntime(options, TextWriter.Null, new ResourceContextFactory("/", "Debug"));

        var delay = runtime.RestartDelay(crashes);

        Assert.Equal(TimeSpan.FromMilliseconds(expectedMilliseconds), delay);
    }

    [Fact]
    public async Task Stop_ChainOfThree_StopsInReverseOrderWithSigterm()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter());
        var a = builder.AddExecutable("a", Sh(UntilTerm));
        var b = builder.AddExecutable("b", Sh(UntilTerm)).WaitFor(a);
        var c = builder.AddExecutable("c", Sh(UntilTerm)).WaitFor(b);
        var exited = new List<string>();
        foreach (var resource in new LabResource[] { a.Resource, b.Resource, c.Resource })
        {
            resource.StateChanged += (r, _, to) =>
            {
                if (to == ResourceState.Exited)
                    lock (exited) exited.Add(r.Name);
            };
        }
        var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        // Running means started here (no probe); wait until each shell has set its trap.
        await WaitUntilAsync(() => Texts(a.Resource, "up") && Texts(b.Resource, "up") && Texts(c.Resource, "up"), "all three up", ct);

        await app.StopAsync().WaitAsync(Bound, ct);

        Assert.Equal(["c", "b", "a"], exited);
        Assert.All([a.Resource, b.Resource, c.Resource], r => Assert.True(Texts(r, "got-term"), $"{r.Name} did not get SIGTERM"));
    }

    [Fact]
    public async Task Stop_ProcessIgnoringSigterm_IsKilledAfterTheGrace()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter(), ("AppHost:StopTimeoutSeconds", "1"));
        var stubborn = builder.AddExecutable("stubborn", Sh("trap '' TERM; echo up; while true; do sleep 0.05; done"));
        var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        await WaitUntilAsync(() => Texts(stubborn.Resource, "up"), "stubborn to start", ct);

        await app.StopAsync().WaitAsync(Bound, ct);

        Assert.Equal(ResourceState.Exited, stubborn.Resource.State);
    }

    [Fact]
    public async Task Stop_ResourceWithInterruptStopSignal_GetsSigintFirst()
    {
        var ct = TestContext.Current.CancellationToken;
        // A long grace: were SIGTERM sent (ignored here), the stop would end in SIGKILL and no "got INT" line.
        var builder = NewBuilder(new StringWriter(), ("AppHost:StopTimeoutSeconds", "15"));
        var server = builder.AddExecutable("server", context =>
            new ProcessSpec("/bin/sh", ["-c", "trap '' TERM; trap 'echo got INT; exit 0' INT; echo up; while true; do sleep 0.05; done"],
                context.Environment, StopSignal: StopSignal.Interrupt));
        var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        await WaitUntilAsync(() => Texts(server.Resource, "up"), "server to start", ct);

        await app.StopAsync().WaitAsync(Bound, ct);

        Assert.Equal(ResourceState.Exited, server.Resource.State);
        Assert.True(Texts(server.Resource, "got INT"), "the resource never saw SIGINT: " + server.Resource.Log.Tail(5));
    }

    [Fact]
    public async Task Output_ChattyResource_IsPrefixedAndKeptBounded()
    {
        var ct = TestContext.Current.CancellationToken;
        var output = new StringWriter();
        var builder = NewBuilder(output, ("AppHost:LogCapacity", "10"));
        var chatty = builder.AddExecutable("chatty",
            Sh("i=1; while [ $i -le 50 ]; do echo line$i; i=$((i+1)); done; sleep 300"));
        var noisy = builder.AddExecutable("noisy", Sh("echo oops >&2; sleep 300"));
        await using var app = builder.Build();

        await app.StartAsync(ct).WaitAsync(Bound, ct);
        await WaitUntilAsync(() => Texts(chatty.Resource, "line50") && Texts(noisy.Resource, "oops"), "all output", ct);

        var kept = chatty.Resource.Log.Snapshot().Select(l => l.Text).ToList();
        Assert.Equal(Enumerable.Range(41, 10).Select(i => $"line{i}"), kept);
        Assert.Contains("[chatty] line1" + Environment.NewLine, output.ToString());
        Assert.Contains("[noisy] oops", output.ToString());
        Assert.True(noisy.Resource.Log.Snapshot().Single().IsError);
    }

    [Fact]
    public async Task Start_PortInUse_FailsBeforeAnythingStarts()
    {
        var ct = TestContext.Current.CancellationToken;
        using var occupant = new TcpListener(IPAddress.Loopback, 0);
        occupant.Start();
        var port = ((IPEndPoint)occupant.LocalEndpoint).Port;
        var builder = NewBuilder(new StringWriter());
        var first = builder.AddExecutable("first", Sh(UntilTerm));
        builder.AddProject("svc", "AgentLab.NoSuchProject").WithHttpEndpoint(port).WaitFor(first);
        await using var app = builder.Build();

        var error = await Assert.ThrowsAsync<LabStartupException>(() => app.StartAsync(ct).WaitAsync(Bound, ct));

        Assert.Contains($"port {port} for svc is in use", error.Message);
        Assert.Contains("--Ports:svc=", error.Message);
        Assert.Equal(ResourceState.Waiting, first.Resource.State);
        Assert.Empty(first.Resource.Log.Snapshot());
    }

    [Fact]
    public async Task Ports_CommandLineForm_OverridesThePortInCode()
    {
        var ct = TestContext.Current.CancellationToken;
        using var occupant = new TcpListener(IPAddress.Loopback, 0);
        occupant.Start();
        var port = ((IPEndPoint)occupant.LocalEndpoint).Port;
        var builder = NewBuilder(new StringWriter(), ("Ports:web", port.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        builder.AddExecutable("web", Sh(UntilTerm)).WithHttpEndpoint(port: 0);
        await using var app = builder.Build();

        var error = await Assert.ThrowsAsync<LabStartupException>(() => app.StartAsync(ct).WaitAsync(Bound, ct));

        Assert.Contains($"port {port} for web is in use", error.Message);
    }

    [Fact]
    public async Task WithReference_ServiceAndConnectionString_AreGivenInAspireNames()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter());
        var db = builder.AddConnectionString("agentlabdb", "Host=db.example;Database=agentlabdb");
        var api = builder.AddExecutable("api", Sh(UntilTerm)).WithHttpEndpoint();
        var client = builder.AddExecutable("client",
                Sh("echo \"db=$ConnectionStrings__agentlabdb\"; echo \"api=$services__api__http__0\"; echo \"x=$EXTRA\"; sleep 300"))
            .WithReference(db).WithReference(api).WaitFor(api).WithEnvironment("EXTRA", "yes");
        await using var app = builder.Build();

        await app.StartAsync(ct).WaitAsync(Bound, ct);
        await WaitUntilAsync(() => Texts(client.Resource, "x=yes"), "the client's output", ct);

        Assert.True(Texts(client.Resource, "db=Host=db.example;Database=agentlabdb"));
        Assert.True(Texts(client.Resource, $"api=http://127.0.0.1:{api.Resource.Port}"));
    }

    [Fact]
    public async Task StatusTable_ConnectionStringWithAPassword_ShowsItRedacted()
    {
        var ct = TestContext.Current.CancellationToken;
        var output = new StringWriter();
        var builder = NewBuilder(output);
        builder.AddConnectionString("db", "Host=db.example;Username=u;Password=hunter2");
        builder.AddExecutable("web", Sh(UntilTerm));
        await using var app = builder.Build();

        await app.StartAsync(ct).WaitAsync(Bound, ct);

        Assert.Contains("Host=db.example;Username=u;Password=***", output.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Build_ResourcesWaitingInACircle_FailsNamingTheCircle()
    {
        var builder = NewBuilder(new StringWriter());
        var a = builder.AddExecutable("a", Sh("true"));
        var b = builder.AddExecutable("b", Sh("true")).WaitFor(a);
        a.WaitFor(b);

        var error = Assert.Throws<LabStartupException>(() => LabApp.TopologicalOrder(builder.Resources));

        Assert.Contains("a -> b -> a", error.Message);
    }
}
