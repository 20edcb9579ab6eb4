using System.Net;
using System.Net.Sockets;
using System.Text;
using AgentLab.AppHost.Infrastructure;
using static AgentLab.Tests.AppHost.InfrastructureTestKit;

namespace AgentLab.Tests.AppHost;

/// <summary>Garnet from the repository's tool manifest and a real redis-server, started from their recipes.</summary>
public sealed class InfrastructureRedisTests
{
    [Fact]
    public async Task GarnetRecipe_ToolManifest_StartsAServerThatAnswersPing()
    {
        var port = FreePort();
        var recipe = new GarnetRecipe(port, RepoRoot());

        // The first run on a fresh machine restores the tool here, which can take a while.
        await recipe.PrepareAsync(Ct).WaitAsync(TimeSpan.FromMinutes(3), Ct);
        var spec = recipe.CreateProcessSpec();
        await using var server = InfrastructureProcess.Start(spec);
        await server.WaitReadyAsync(recipe, Ct);

        Assert.EndsWith("GarnetServer.dll", recipe.EntryPoint, StringComparison.Ordinal);
        Assert.Equal(recipe.EntryPoint, spec.Arguments[0]);
        Assert.Equal($"127.0.0.1:{port}", recipe.ExportedEnvironment["ConnectionStrings__redis"]);
        Assert.True(await RespPing.PingAsync("127.0.0.1", port, TimeSpan.FromSeconds(2), Ct));
    }

    [Fact]
    public async Task GarnetRecipe_NoToolManifest_ThrowsSayingWhatToDo()
    {
        var scratch = ScratchFolder();
        try
        {
            var recipe = new GarnetRecipe(FreePort(), scratch);

            var error = await Assert.ThrowsAsync<InfrastructureException>(() => recipe.PrepareAsync(Ct).WaitAsync(TimeSpan.FromSeconds(30), Ct));

            Assert.Contains("dotnet-tools.json", error.Message, StringComparison.Ordinal);
            Assert.Contains("ConnectionStrings:redis", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Delete(scratch);
        }
    }

    [Fact]
    public async Task GarnetRecipe_RestoreFails_ThrowsWithTheRestoreOutputAndWhatToDo()
    {
        var scratch = ScratchFolder();
        try
        {
            // A version NuGet does not have: the restore runs for real and fails.
            Directory.CreateDirectory(Path.Combine(scratch, ".config"));
            await File.WriteAllTextAsync(Path.Combine(scratch, ".config", "dotnet-tools.json"),
                """{"version":1,"isRoot":true,"tools":{"garnet-server":{"version":"0.0.1-missing","commands":["garnet-server"]}}}""", Ct);
            var recipe = new GarnetRecipe(FreePort(), scratch);

            var error = await Assert.ThrowsAsync<InfrastructureException>(() => recipe.PrepareAsync(Ct).WaitAsync(TimeSpan.FromMinutes(3), Ct));

            Assert.Contains("dotnet tool restore", error.Message, StringComparison.Ordinal);
            Assert.Contains("0.0.1-missing", error.Message, StringComparison.Ordinal);
            Assert.Contains("ConnectionStrings:redis", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Delete(scratch);
        }
    }

    [Fact]
    public async Task RedisServerRecipe_Installed_StartsAServerThatAnswersPing()
    {
        if (RedisServerRecipe.FindExecutable() is null)
        {
            // CI installs redis-server (.ci/run); there a missing one is a broken setup, not a reason to skip.
            Assert.False(string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase),
                "redis-server is not installed, and CI=true: .ci/run must `apt-get install -y redis-server`.");
            Assert.Skip("redis-server is not installed (sudo apt-get install redis-server).");
        }
        var port = FreePort();
        var recipe = new RedisServerRecipe(port);

        await recipe.PrepareAsync(Ct);
        await using var server = InfrastructureProcess.Start(recipe.CreateProcessSpec());
        await server.WaitReadyAsync(recipe, Ct);

        Assert.Equal($"127.0.0.1:{port}", recipe.ExportedEnvironment["ConnectionStrings__redis"]);
        Assert.True(await RespPing.PingAsync("127.0.0.1", port, TimeSpan.FromSeconds(2), Ct));
    }

    [Fact]
    public async Task RespPing_NothingListening_ReturnsFalse()
    {
        var port = FreePort();

        var answered = await RespPing.PingAsync("127.0.0.1", port, TimeSpan.FromSeconds(1), Ct).WaitAsync(TimeSpan.FromSeconds(5), Ct);

        Assert.False(answered);
    }

    [Theory]
    [InlineData("HTTP/1.1 400 Bad Request\r\n\r\n")]
    [InlineData("-LOADING Redis is loading the dataset in memory\r\n")]
    [InlineData("+PON")]
    public async Task RespPing_ServerThatDoesNotAnswerPong_ReturnsFalse(string reply)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var serve = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync(Ct);
            var stream = client.GetStream();
            await stream.ReadExactlyAsync(new byte[14], Ct);
            await stream.WriteAsync(Encoding.ASCII.GetBytes(reply), Ct);
            client.Client.Shutdown(SocketShutdown.Send);
        }, Ct);

        var answered = await RespPing.PingAsync("127.0.0.1", port, TimeSpan.FromSeconds(2), Ct).WaitAsync(TimeSpan.FromSeconds(5), Ct);
        await serve.WaitAsync(TimeSpan.FromSeconds(5), Ct);

        Assert.False(answered);
    }
}
