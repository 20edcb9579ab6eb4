using AgentLab.AppHost.Infrastructure;
using AgentLab.Tests.AppHost;

[assembly: AssemblyFixture(typeof(AgentLab.Tests.Support.SharedRedis))]

namespace AgentLab.Tests.Support;

/// <summary>Which real Redis-protocol server a test runs against.</summary>
public enum RedisKind
{
    /// <summary>Microsoft's Garnet, from the repository's tool manifest (always available: NuGet only).</summary>
    Garnet,

    /// <summary>A real redis-server (installed by .ci/run; skipped locally when missing, failed under CI=true).</summary>
    RedisServer,
}

/// <summary>
/// A real Redis-protocol server on a free port, started from the AppHost's own recipes (so tests start it the way the
/// lab does). Most tests share one Garnet (<see cref="SharedRedis"/>); a test that stops it starts its own.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private readonly IInfrastructureRecipe recipe;
    private InfrastructureProcess? process;

    private RedisServer(RedisKind kind, IInfrastructureRecipe recipe, int port)
    {
        Kind = kind;
        this.recipe = recipe;
        Port = port;
    }

    public RedisKind Kind { get; }

    public int Port { get; }

    /// <summary>For <c>ConnectionStrings:redis</c>.</summary>
    public string ConnectionString => $"127.0.0.1:{Port}";

    /// <summary>
    /// Skips the calling test when <paramref name="kind"/> cannot run here (redis-server not installed), except under
    /// CI=true, where a missing server is a broken setup and fails.
    /// </summary>
    public static void SkipUnlessAvailable(RedisKind kind)
    {
        if (kind != RedisKind.RedisServer || RedisServerRecipe.FindExecutable() is not null)
            return;
        Assert.False(string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase),
            "redis-server is not installed, and CI=true: .ci/run must `apt-get install -y redis-server`.");
        Assert.Skip("redis-server is not installed (sudo apt-get install redis-server).");
    }

    /// <summary>Starts a private server of <paramref name="kind"/> (call <see cref="SkipUnlessAvailable"/> first).</summary>
    public static async Task<RedisServer> StartAsync(RedisKind kind, CancellationToken ct)
    {
        var port = InfrastructureTestKit.FreePort();
        IInfrastructureRecipe recipe = kind == RedisKind.Garnet
            ? new GarnetRecipe(port, InfrastructureTestKit.RepoRoot())
            : new RedisServerRecipe(port);
        // The first Garnet on a fresh machine restores the tool, which can take a while.
        await recipe.PrepareAsync(ct).WaitAsync(TimeSpan.FromMinutes(3), ct);
        var server = new RedisServer(kind, recipe, port);
        await server.StartAgainAsync(ct);
        return server;
    }

    /// <summary>Stops the server (SIGTERM; nothing is persisted). Connected clients see the connection drop.</summary>
    public async Task StopAsync()
    {
        if (process is not null)
            await process.DisposeAsync();
        process = null;
    }

    /// <summary>Starts it again on the same port.</summary>
    public async Task StartAgainAsync(CancellationToken ct)
    {
        process = InfrastructureProcess.Start(recipe.CreateProcessSpec());
        await process.WaitReadyAsync(recipe, ct);
    }

    public ValueTask DisposeAsync() => new(StopAsync());
}

/// <summary>The one Garnet the test assembly shares, started on first use and stopped after the last test.</summary>
public sealed class SharedRedis : IAsyncDisposable
{
    private static readonly Lazy<Task<RedisServer>> server = new(() => RedisServer.StartAsync(RedisKind.Garnet, CancellationToken.None));

    public static Task<RedisServer> GetAsync() => server.Value;

    public async ValueTask DisposeAsync()
    {
        if (server.IsValueCreated && server.Value.IsCompletedSuccessfully)
            await server.Value.Result.DisposeAsync();
    }
}
