using System.Globalization;
using AgentLab.AppHost.Hosting;

namespace AgentLab.AppHost.Infrastructure;

/// <summary>
/// A real <c>redis-server</c> when one is installed (tests run our Redis-facing code against it as well as Garnet).
/// Nothing is persisted: no RDB snapshots, no AOF.
/// </summary>
public sealed class RedisServerRecipe(int port) : IInfrastructureRecipe
{
    private string? executable;

    public string Name => "redis";

    public string Endpoint => $"tcp://127.0.0.1:{port}";

    public IReadOnlyList<string> Notices => [];

    public string ConnectionString => $"127.0.0.1:{port}";

    public IReadOnlyDictionary<string, string> ExportedEnvironment =>
        new Dictionary<string, string> { ["ConnectionStrings__redis"] = ConnectionString };

    /// <summary>The redis-server on PATH (or in /usr/bin, /usr/local/bin), or null when none is installed.</summary>
    public static string? FindExecutable() =>
        CommandRunner.FindOnPath("redis-server")
        ?? new[] { "/usr/bin/redis-server", "/usr/local/bin/redis-server", "/opt/homebrew/bin/redis-server" }.FirstOrDefault(File.Exists);

    public Task PrepareAsync(CancellationToken ct)
    {
        executable = FindExecutable() ?? throw new InfrastructureException(
            "Redis: redis-server is not installed. Install it (Debian/Ubuntu: `sudo apt-get install redis-server`; macOS: " +
            "`brew install redis`), use Garnet from the repository's tool manifest instead, or set ConnectionStrings:redis.");
        return Task.CompletedTask;
    }

    public ProcessSpec CreateProcessSpec() =>
        new(executable ?? throw new InvalidOperationException("Call PrepareAsync first."),
            ["--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            new Dictionary<string, string>());

    public Task<bool> IsReadyAsync(CancellationToken ct) => RespPing.PingAsync("127.0.0.1", port, TimeSpan.FromSeconds(1), ct);

    public Task AfterReadyAsync(CancellationToken ct) => Task.CompletedTask;
}
