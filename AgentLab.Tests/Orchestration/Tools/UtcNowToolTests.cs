using System.Text.Json;
using AgentLab.LabService.Orchestration.Tools;
using AgentLab.Tests.Support;

namespace AgentLab.Tests.Orchestration.Tools;

public sealed class UtcNowToolTests
{
    [Fact]
    public async Task InvokeAsync_InjectedClock_ReturnsUtcIso8601AndWeekday()
    {
        // 12:30 at +02:00 is 10:30 UTC; 2026-11-21 is a Saturday.
        var tool = new UtcNowTool(new StoppedClock(new DateTimeOffset(2026, 11, 21, 12, 30, 15, 678, TimeSpan.FromHours(2))));
        using var args = JsonDocument.Parse("{}");

        var result = await tool.InvokeAsync(args.RootElement, TestContext.Current.CancellationToken);

        Assert.True(result.Ok);
        using var json = JsonDocument.Parse(result.Content);
        Assert.Equal("2026-11-21T10:30:15Z", json.RootElement.GetProperty("utc").GetString());
        Assert.Equal("Saturday", json.RootElement.GetProperty("weekday").GetString());
        Assert.Equal("2026-11-21", json.RootElement.GetProperty("date").GetString());
        Assert.Equal("10:30:15", json.RootElement.GetProperty("time").GetString());
    }

    [Fact]
    public async Task InvokeAsync_UnexpectedArguments_AreIgnored()
    {
        var tool = new UtcNowTool(new StoppedClock(new DateTimeOffset(2027, 1, 1, 0, 0, 0, TimeSpan.Zero)));
        using var args = JsonDocument.Parse("""{"timezone":"Europe/Madrid"}""");

        var result = await tool.InvokeAsync(args.RootElement, TestContext.Current.CancellationToken);

        Assert.True(result.Ok);
        Assert.Contains("\"utc\":\"2027-01-01T00:00:00Z\",\"weekday\":\"Friday\"", result.Content);
    }
}
