using System.Diagnostics;
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

    /// <summary>Runs the built Backend in Production with <paramref name="environment"/>; its exit code and stderr.</summary>
    private static async Task<(int ExitCode, string Error)> RunBackendAsync(IReadOnlyDictionary<string, string> environment)
    {
        var dll = Path.Combine(ServiceProcess.RepoRoot(), "AgentLab.Backend", "bin", ServiceProcess.BuildConfiguration(), "net10.0", "AgentLab.Backend.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: build the solution first.");
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        info.ArgumentList.Add(dll);
        info.ArgumentList.Add("--urls");
        info.ArgumentList.Add("http://127.0.0.1:0");
        // Nothing inherited may hand it a key or another environment.
        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("Auth__", StringComparison.OrdinalIgnoreCase)).ToList())
            info.Environment.Remove(key);
        info.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        info.Environment["DOTNET_ENVIRONMENT"] = "Production";
        foreach (var (key, value) in environment)
            info.Environment[key] = value;

        using var process = Process.Start(info)!;
        var error = process.StandardError.ReadToEndAsync(Ct);
        var output = process.StandardOutput.ReadToEndAsync(Ct);
        try
        {
            await process.WaitForExitAsync(Ct).WaitAsync(ProcessBound, Ct);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"The Backend did not stop within {ProcessBound.TotalSeconds} s: it started without a usable key.");
        }
        await output.WaitAsync(ProcessBound, Ct);
        return (process.ExitCode, await error.WaitAsync(ProcessBound, Ct));
    }

    [Fact]
    public async Task Backend_ProductionWithoutKey_ExitsNonZeroSayingWhatToSet()
    {
        var (exitCode, error) = await RunBackendAsync(new Dictionary<string, string>());

        Assert.NotEqual(0, exitCode);
        Assert.Contains("will not start", error, StringComparison.Ordinal);
        Assert.Contains("Auth__SigningKey", error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);       // a sentence, not a stack trace
    }

    [Fact]
    public async Task Backend_ProductionWithTooShortKey_ExitsNonZeroSayingWhy()
    {
        var shortKey = Convert.ToBase64String(new byte[16]);

        var (exitCode, error) = await RunBackendAsync(new Dictionary<string, string> { ["Auth__SigningKey"] = shortKey });

        Assert.NotEqual(0, exitCode);
        Assert.Contains("will not start", error, StringComparison.Ordinal);
        Assert.Contains("at least 32", error, StringComparison.Ordinal);
        Assert.DoesNotContain(shortKey, error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
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
