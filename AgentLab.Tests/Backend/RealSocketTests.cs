using System.Net;

namespace AgentLab.Tests.Backend;

/// <summary>The Backend on a real Kestrel socket: it must take the port it is given, not its default 8000.</summary>
public sealed class RealSocketTests : BackendTestBase
{
    [Fact]
    public async Task Execute_OverRealSocket_AnswersOnEphemeralPort()
    {
        await using var factory = new BackendFactory(Lab.BaseAddress);
        factory.UseKestrel(0);
        factory.StartServer();
        var client = factory.CreateClient();

        var response = await PostJsonAsync(client, """{"prompt": "Dime 3 números primos", "model": "mistral7b"}""");

        Assert.NotEqual(8000, client.BaseAddress!.Port);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("completed", (await JsonAsync(response)).GetProperty("status").GetString());
    }
}
