using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using AgentLab.Tests.Support;

namespace AgentLab.Tests.Backend.Security;

/// <summary>
/// A real Backend process, its console output read line by line as a terminal or a log shipper reads it: a prompt
/// with CR/LF and an ANSI escape, logged because Telemetry:CaptureContent is on, stays one escaped line.
/// </summary>
public sealed class LogInjectionProcessTests : BackendTestBase
{
    [Fact]
    public async Task BackendProcess_PromptWithCrLfAndAnsiEscape_IsLoggedAsExactlyOneEscapedLine()
    {
        var environment = new Dictionary<string, string>(TestTokens.Environment)
        {
            ["ConnectionStrings__agentlabdb"] = Database.ConnectionString,
            ["LabService__BaseAddress"] = Lab.BaseAddress.ToString(),
            ["Retention__Enabled"] = "false",
            ["Telemetry__CaptureContent"] = "true",
        };
        await using var backend = await ServiceProcess.StartAsync("AgentLab.Backend", "/api/v1/health", environment, [], Ct).WaitAsync(TimeSpan.FromSeconds(60), Ct);
        using var http = new HttpClient { BaseAddress = backend.BaseAddress };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", TestTokens.For());
        var prompt = "hello\r\nFAKE 200 OK\u001b[31m";
        var body = JsonSerializer.Serialize(new Dictionary<string, string> { ["prompt"] = prompt, ["mode"] = "async" });

        using var response = await http.PostAsync("/api/v1/execute", new StringContent(body, Encoding.UTF8, "application/json"), Ct).WaitAsync(Bound, Ct);
        var deadline = DateTime.UtcNow + Bound;
        while (!backend.RecentOutput.Contains("Telemetry:CaptureContent is on", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, "The prompt was not logged:\n" + backend.RecentOutput);
            await Task.Delay(50, Ct);
        }

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        // RecentOutput holds the lines as the process's reader split them (on CR, LF and CRLF).
        var lines = backend.RecentOutput.Split(Environment.NewLine);
        var logged = Assert.Single(lines, l => l.Contains("FAKE 200 OK", StringComparison.Ordinal));
        Assert.Contains(@"hello\r\nFAKE 200 OK\u001b[31m", logged);
        Assert.DoesNotContain('\u001b', backend.RecentOutput);
        Assert.DoesNotContain(lines, l => l.StartsWith("FAKE", StringComparison.Ordinal));
    }
}
