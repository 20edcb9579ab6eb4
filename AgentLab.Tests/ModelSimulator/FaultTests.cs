using System.Net;
using System.Text.Json;
using AgentLab.ModelSimulator;
using static AgentLab.Tests.ModelSimulator.SimulatorTestKit;

namespace AgentLab.Tests.ModelSimulator;

public sealed class FaultTests
{
    [Theory]
    [InlineData("not_found", 404, "model 'mistral:7b' not found")]
    [InlineData("queue_full", 503, "server busy, please try again.  maximum pending requests exceeded")]
    [InlineData("http_500", 500, "llama runner process has terminated: exit status 2")]
    public async Task Fault_BeforeTheFirstByte_AnswersStatusAndOllamaError(string fault, int status, string error)
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var response = await http.PostAsync("/api/chat", ChatBody("mistral:7b", "Hello"), fault);

        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("application/json", response.ContentType()?.MediaType);
        Assert.Equal(error, (await response.JsonAsync()).GetProperty("error").GetString());
    }

    [Fact]
    public async Task Fault_ErrorMidStream_Sends200ThenNTokensThenAnErrorLine()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var response = await http.PostAsync("/api/chat", ChatBody("mistral:7b", "Tell a story"), "error_mid_stream:2");
        var lines = await response.LinesAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(3, lines.Count);
        Assert.All(lines[..2], l => Assert.False(l.GetProperty("done").GetBoolean()));
        Assert.StartsWith("an error was encountered", lines[2].GetProperty("error").GetString());
    }

    [Fact]
    public async Task Fault_ErrorMidStreamWithStreamFalse_Is500()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var response = await http.PostAsync("/api/generate", """{"model":"mistral:7b","prompt":"x","stream":false}""", "error_mid_stream");

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.True((await response.JsonAsync()).TryGetProperty("error", out _));
    }

    [Fact]
    public async Task Fault_Cut_EndsTheStreamWithoutADoneLine()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var response = await http.PostAsync("/api/chat", ChatBody("mistral:7b", "Tell a story"), "cut:4");
        var lines = await response.LinesAsync();

        Assert.Equal(4, lines.Count);
        Assert.DoesNotContain(lines, l => l.GetProperty("done").GetBoolean());
    }

    [Fact]
    public async Task Fault_Stall_SendsNTokensThenNothingUntilTheClientCancels()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        using var response = await http.PostAsync("/api/chat", ChatBody("mistral:7b", "Tell a story"), cts.Token, "stall:2");
        await using var stream = await response.Content.ReadAsStreamAsync(Ct);
        using var reader = new StreamReader(stream);
        var first = await reader.ReadLineAsync(cts.Token).AsTask().WaitAsync(Bound, Ct);
        var second = await reader.ReadLineAsync(cts.Token).AsTask().WaitAsync(Bound, Ct);
        var third = reader.ReadLineAsync(cts.Token).AsTask();
        var stalled = await Task.WhenAny(third, Task.Delay(300, Ct)) != third;
        cts.Cancel();
        var ended = await Record.ExceptionAsync(() => third.WaitAsync(Bound, Ct));

        Assert.False(JsonDocument.Parse(first!).RootElement.GetProperty("done").GetBoolean());
        Assert.False(JsonDocument.Parse(second!).RootElement.GetProperty("done").GetBoolean());
        Assert.True(stalled, "no third line may arrive while stalled");
        Assert.IsAssignableFrom<OperationCanceledException>(ended);
    }

    [Fact]
    public async Task Fault_SlowFirstToken_ReportsThatPromptEvalDuration()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var response = await http.PostAsync("/api/chat", ChatBody("mistral:7b", "Hi", ""","stream":false"""), "slow_first_token:60");
        var json = await response.JsonAsync();

        Assert.Equal(60_000_000, json.GetProperty("prompt_eval_duration").GetInt64());
    }

    [Fact]
    public async Task Fault_ConfiguredOnTheModel_AppliesWithoutAHeader()
    {
        var options = Fast();
        options.Models.Add(new SimulatedModel { Name = "broken:1b", Capabilities = ["completion"], Fault = "http_500" });
        var (host, http) = await StartAsync(options);
        await using var scope = host;

        using var broken = await http.PostAsync("/api/chat", ChatBody("broken:1b", "Hi"));
        using var fine = await http.PostAsync("/api/chat", ChatBody("mistral:7b", "Hi"));

        Assert.Equal(HttpStatusCode.InternalServerError, broken.StatusCode);
        Assert.Equal(HttpStatusCode.OK, fine.StatusCode);
    }

    [Theory]
    [InlineData("explode")]
    [InlineData("stall:soon")]
    [InlineData("http_500:3")]
    public async Task Fault_UnknownOrMalformed_Is400ListingTheValidFaults(string fault)
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var response = await http.PostAsync("/api/chat", ChatBody("mistral:7b", "Hi"), fault);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("error_mid_stream[:N]", (await response.JsonAsync()).GetProperty("error").GetString());
    }

    [Fact]
    public async Task MaxQueue_WhenFull_AnswersTheNextRequest503()
    {
        var options = Fast();
        options.MaxQueue = 1;
        var (host, http) = await StartAsync(options);
        await using var scope = host;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        using var stalled = await http.PostAsync("/api/chat", ChatBody("mistral:7b", "Hi"), cts.Token, "stall:1");

        using var rejected = await http.PostAsync("/api/chat", ChatBody("mistral:7b", "Hi"));
        cts.Cancel();

        Assert.Equal(HttpStatusCode.ServiceUnavailable, rejected.StatusCode);
        Assert.Equal(Fault.QueueFullMessage, (await rejected.JsonAsync()).GetProperty("error").GetString());
    }

    [Theory]
    [InlineData("", 400, "missing request body")]
    [InlineData("{\"model\":", 400, "invalid JSON")]
    [InlineData("{\"messages\":[]}", 400, "model is required")]
    [InlineData("{\"model\":\"ghost:9b\",\"messages\":[]}", 404, "model 'ghost:9b' not found")]
    public async Task Chat_BadRequests_AnswerLikeOllama(string body, int status, string error)
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var response = await http.PostAsync("/api/chat", body);

        Assert.Equal(status, (int)response.StatusCode);
        Assert.Contains(error, (await response.JsonAsync()).GetProperty("error").GetString());
    }
}
