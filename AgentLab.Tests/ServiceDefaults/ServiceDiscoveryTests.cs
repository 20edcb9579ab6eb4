using System.Net;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace AgentLab.Tests.ServiceDefaults;

public sealed class ServiceDiscoveryTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private static ServiceEndpointResolver Resolver(params (string Key, string Value)[] settings) =>
        new(new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value))).Build());

    [Fact]
    public void Resolve_LogicalName_RewritesToConfiguredEndpointKeepingPathAndQuery()
    {
        var resolver = Resolver(("services:labservice:http:0", "http://127.0.0.1:8001"));

        var resolved = resolver.Resolve(new Uri("http://labservice/inference/?stream=true"));

        Assert.Equal(new Uri("http://127.0.0.1:8001/inference/?stream=true"), resolved);
    }

    [Fact]
    public void Resolve_HttpsScheme_UsesHttpsEndpoint()
    {
        var resolver = Resolver(("services:labservice:http:0", "http://127.0.0.1:8001"), ("services:labservice:https:0", "https://127.0.0.1:8443"));

        var resolved = resolver.Resolve(new Uri("https://labservice/models"));

        Assert.Equal(new Uri("https://127.0.0.1:8443/models"), resolved);
    }

    [Fact]
    public void Resolve_SeveralIndices_RoundRobins()
    {
        var resolver = Resolver(("services:labservice:http:0", "http://127.0.0.1:8001"), ("services:labservice:http:1", "http://127.0.0.1:8002"));

        var ports = Enumerable.Range(0, 4).Select(_ => resolver.Resolve(new Uri("http://labservice/")).Port).ToArray();

        Assert.Equal(2, ports.Distinct().Count());
        Assert.Equal(ports[0], ports[2]);
        Assert.Equal(ports[1], ports[3]);
    }

    [Fact]
    public void Resolve_UnknownName_ThrowsWithTheSettingToAdd()
    {
        var resolver = Resolver();

        var error = Assert.Throws<ServiceEndpointNotFoundException>(() => resolver.Resolve(new Uri("http://labservice/inference/")));

        Assert.Equal("labservice", error.Service);
        Assert.Equal("Service 'labservice' has no endpoint: set services__labservice__http__0 (e.g. http://127.0.0.1:8001).", error.Message);
    }

    [Theory]
    [InlineData("http://localhost:5000/x")]
    [InlineData("http://127.0.0.1:8001/x")]
    [InlineData("http://[::1]:8001/x")]
    [InlineData("https://api.example.com/x")]
    public void Resolve_RealHost_LeftAlone(string address)
    {
        var resolver = Resolver();
        var uri = new Uri(address);

        var resolved = resolver.Resolve(uri);

        Assert.Same(uri, resolved);
    }

    [Fact]
    public void Resolve_ConfigurationReloaded_UsesNewEndpoint()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection([new("services:labservice:http:0", "http://127.0.0.1:8001")]).Build();
        var resolver = new ServiceEndpointResolver(config);
        _ = resolver.Resolve(new Uri("http://labservice/"));

        config["services:labservice:http:0"] = "http://127.0.0.1:9001";
        config.Reload();
        var resolved = resolver.Resolve(new Uri("http://labservice/"));

        Assert.Equal(9001, resolved.Port);
    }

    [Fact]
    public async Task HttpClient_FromFactory_ReachesLogicalServiceThroughConfiguration()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var lab = await TestHost.StartAsync(app => app.MapGet("/ping", () => "pong"), defaults: false);
        await using var backend = await TestHost.StartAsync(_ => { }, config: new() { ["services:labservice:http:0"] = lab.Address.ToString() });
        var client = backend.Services.GetRequiredService<IHttpClientFactory>().CreateClient();

        var body = await client.GetStringAsync(new Uri("http://labservice/ping"), ct).WaitAsync(Timeout, ct);

        Assert.Equal("pong", body);
    }
}
