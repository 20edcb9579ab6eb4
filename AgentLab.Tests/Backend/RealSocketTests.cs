using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using AgentLab.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace AgentLab.Tests.Backend;

/// <summary>The Backend on a real Kestrel socket: it must take the port it is given, not its default 8000.</summary>
public sealed class RealSocketTests : BackendTestBase
{
    [Fact]
    public async Task Execute_OverRealSocket_AnswersOnEphemeralPort()
    {
        // The address comes as configuration, as an orchestrator gives it; not UseKestrel(0), which races the
        // minimal-hosting entry point over the server's addresses.
        await using var factory = new BackendFactory(Lab.BaseAddress, Database.ConnectionString, new Dictionary<string, string?> { ["urls"] = "http://127.0.0.1:0" });
        factory.UseKestrel();
        factory.StartServer();
        var address = factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        using var client = new HttpClient { BaseAddress = new Uri(address) }.As();

        var response = await PostJsonAsync(client, """{"prompt": "Dime 3 números primos", "model": "mistral7b"}""");

        Assert.NotEqual(8000, client.BaseAddress!.Port);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("completed", (await JsonAsync(response)).GetProperty("status").GetString());
    }
}
