using System.Net;
using System.Text;
using System.Text.Json;
using AgentLab.AppHost.Hosting;
using AgentLab.AppHost.Lab;
using AgentLab.Backend.Security;
using AgentLab.Tests.Support;

namespace AgentLab.Tests.Backend.Security;

/// <summary>
/// A Backend outside Development never runs open: with no key, or a key too short to trust, the process stops with
/// a sentence that says what to set. Tokens from the token command and the AppHost are accepted by a Backend with
/// the same key.
/// </summary>
public sealed class AuthStartupTests : BackendTestBase
{
    private static readonly TimeSpan ProcessBound = TimeSpan.FromSeconds(60);

    /// <summary>Runs the built Backend in Production with <paramref name="environment"/>; its exit code and output.</summary>
    private static Task<(int ExitCode, string Output)> RunBackendAsync(IReadOnlyDictionary<string, string> environment)
    {
        var production = new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["DOTNET_ENVIRONMENT"] = "Production",
            // Nothing inherited may hand it a key (an empty value counts as none).
            ["Auth__SigningKey"] = "",
            ["Auth__SigningKeyFile"] = "",
            ["Auth__Authority"] = "",
        };
        foreach (var (key, value) in environment)
            production[key] = value;
        return ServiceProcess.RunUntilExitAsync("AgentLab.Backend", production, ProcessBound, Ct);
    }

    [Fact]
    public async Task Backend_ProductionWithoutKey_ExitsNonZeroSayingWhatToSet()
    {
        var (exitCode, output) = await RunBackendAsync(new Dictionary<string, string>());

        Assert.NotEqual(0, exitCode);
        Assert.Contains("will not start", output, StringComparison.Ordinal);
        Assert.Contains("Auth__SigningKey", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);       // a sentence, not a stack trace
    }

    [Fact]
    public async Task Backend_ProductionWithTooShortKey_ExitsNonZeroSayingWhy()
    {
        var shortKey = Convert.ToBase64String(new byte[16]);

        var (exitCode, output) = await RunBackendAsync(new Dictionary<string, string> { ["Auth__SigningKey"] = shortKey });

        Assert.NotEqual(0, exitCode);
        Assert.Contains("will not start", output, StringComparison.Ordinal);
        Assert.Contains("at least 32", output, StringComparison.Ordinal);
        Assert.DoesNotContain(shortKey, output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    private static string Subject(string token)
    {
        var payload = token.Split('.')[1].Replace('-', '+').Replace('_', '/');
        payload = payload.PadRight(payload.Length + (4 - payload.Length % 4) % 4, '=');
        return JsonDocument.Parse(Convert.FromBase64String(payload)).RootElement.GetProperty("sub").GetString()!;
    }

    private async Task<HttpStatusCode> GetWithTokenAsync(string token)
    {
        Backend(null, out var factory);
        var client = factory.CreateAnonymousClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", token);
        return (await client.GetAsync("/api/v1/graphs", Ct).WaitAsync(Bound, Ct)).StatusCode;
    }

    [Fact]
    public async Task TokenCommand_WithTheBackendsKey_PrintsATokenTheBackendAccepts()
    {
        var output = new StringWriter();
        var error = new StringWriter();

        var exitCode = TokenCommand.Run(["--sub", "alice", $"--Auth:SigningKey={TestTokens.EncodedKey}"], output, error);

        Assert.Equal(0, exitCode);
        var token = output.ToString().Trim();
        Assert.Single(output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));   // only the token on stdout
        Assert.Equal("alice", Subject(token));
        Assert.DoesNotContain(TestTokens.EncodedKey, error.ToString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, await GetWithTokenAsync(token));
    }

    [Theory]
    [InlineData("")]
    [InlineData("--sub")]
    [InlineData("--sub alice --lifetime forever")]
    [InlineData("--sub alice --bogus")]
    public void TokenCommand_BadArguments_Exit2WithUsage(string commandLine)
    {
        var output = new StringWriter();
        var error = new StringWriter();

        var exitCode = TokenCommand.Run(commandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries), output, error);

        Assert.Equal(2, exitCode);
        Assert.Contains("usage: token --sub", error.ToString(), StringComparison.Ordinal);
        Assert.Equal("", output.ToString());
    }

    [Fact]
    public async Task AppHostCredentials_DeveloperToken_IsAcceptedByABackendWithTheSameKey()
    {
        var builder = LabAppBuilder.Create([new("Auth:SigningKey", TestTokens.EncodedKey)], TextWriter.Null);
        var credentials = LabCredentials.Create(builder);

        var token = credentials.Mint(LabCredentials.DeveloperSubject);

        Assert.Equal("Auth:SigningKey", credentials.SigningKeySource);
        Assert.Equal(LabCredentials.DeveloperSubject, Subject(token));
        Assert.Equal(HttpStatusCode.OK, await GetWithTokenAsync(token));
    }

    [Fact]
    public void AppHostCredentials_TooShortKey_RefusedWithStartupError()
    {
        var builder = LabAppBuilder.Create([new("Auth:SigningKey", Convert.ToBase64String(Encoding.ASCII.GetBytes("short")))], TextWriter.Null);

        var ex = Assert.Throws<LabStartupException>(() => LabCredentials.Create(builder));

        Assert.Contains("at least 32", ex.Message, StringComparison.Ordinal);
    }
}
