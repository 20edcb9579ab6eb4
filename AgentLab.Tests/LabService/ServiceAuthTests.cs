using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using AgentLab.LabService;
using AgentLab.LabService.Security;
using AgentLab.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Hosting;

namespace AgentLab.Tests.LabService;

/// <summary>LabService lets in only the Backend: every call but the probes needs the service key.</summary>
public sealed class ServiceAuthTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);
    private const string Key = "a-service-key-that-is-long-enough-0123456789";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static WebApplicationFactory<LabServiceMarker> Factory(Uri ollama, string? key, string environment = "Development") =>
        new WebApplicationFactory<LabServiceMarker>().WithWebHostBuilder(builder =>
        {
            builder.UseEnvironment(environment);
            builder.UseSetting("ConnectionStrings:ollama", $"Endpoint={ollama}");
            if (key is not null)
                builder.UseSetting("ServiceAuth:Key", key);
        });

    [Theory]
    [InlineData(null, "service_credential_required")]
    [InlineData("Bearer not-the-key", "invalid_service_credential")]
    [InlineData("Basic " + Key, "invalid_service_credential")]
    public async Task Models_WithoutTheServiceKey_Is401WithCode(string? authorization, string code)
    {
        await using var ollama = await FakeOllama.StartAsync(Ct);
        await using var factory = Factory(ollama.BaseAddress, Key);
        using var client = factory.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/models/");
        if (authorization is not null)
            request.Headers.TryAddWithoutValidation("Authorization", authorization);

        using var response = await client.SendAsync(request, Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
        Assert.Equal(code, body.RootElement.GetProperty("code").GetString());
        Assert.DoesNotContain(Key, body.RootElement.GetRawText());
        Assert.Equal(0, ollama.TagsCalls);
    }

    [Fact]
    public async Task Models_WithTheServiceKey_Answers()
    {
        await using var ollama = await FakeOllama.StartAsync(Ct);
        await using var factory = Factory(ollama.BaseAddress, Key);
        using var client = factory.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);

        using var response = await client.GetAsync("/models/", Ct).WaitAsync(Bound, Ct);

        Assert.NotEqual(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.True(ollama.TagsCalls > 0, "the call reached the model server");
    }

    [Theory]
    [InlineData("/health")]
    [InlineData("/alive")]
    public async Task Probes_WithoutTheServiceKey_Answer(string path)
    {
        await using var ollama = await FakeOllama.StartAsync(Ct);
        await using var factory = Factory(ollama.BaseAddress, Key);
        using var client = factory.CreateClient();

        using var response = await client.GetAsync(path, Ct).WaitAsync(Bound, Ct);

        Assert.NotEqual(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public void Start_OutsideDevelopmentWithoutKey_Refuses()
    {
        var options = Microsoft.Extensions.Options.Options.Create(new ServiceAuthOptions());
        var production = new TestEnvironment(Environments.Production);

        var ex = Assert.Throws<ServiceAuthConfigurationException>(() => new ServiceAuth(options, production));

        Assert.Contains("ServiceAuth__Key", ex.Message);
    }

    [Fact]
    public void Start_WithShortKey_Refuses()
    {
        var options = Microsoft.Extensions.Options.Options.Create(new ServiceAuthOptions { Key = "short" });

        Assert.Throws<ServiceAuthConfigurationException>(() => new ServiceAuth(options, new TestEnvironment(Environments.Production)));
    }

    [Fact]
    public async Task LabServiceProcess_InProductionWithoutKey_ExitsWithTheReason()
    {
        var environment = new Dictionary<string, string> { ["ASPNETCORE_ENVIRONMENT"] = "Production" };

        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            ServiceProcess.StartAsync("AgentLab.LabService", "/health", environment, [], Ct).WaitAsync(TimeSpan.FromSeconds(60), Ct));

        Assert.Contains("will not start", ex.Message);
        Assert.Contains("ServiceAuth__Key", ex.Message);
    }

    private sealed class TestEnvironment(string name) : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = name;
        public string ApplicationName { get; set; } = "AgentLab.LabService";
        public string ContentRootPath { get; set; } = AppContext.BaseDirectory;
        public Microsoft.Extensions.FileProviders.IFileProvider ContentRootFileProvider { get; set; } = new Microsoft.Extensions.FileProviders.NullFileProvider();
    }
}
