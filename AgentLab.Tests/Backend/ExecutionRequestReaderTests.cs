using System.Buffers;
using System.Text;
using AgentLab.Backend.Executions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AgentLab.Tests.Backend;

/// <summary>Handler-level tests of how an execute body is read and validated, without a server.</summary>
public sealed class ExecutionRequestReaderTests
{
    private static readonly ExecutionOptions Options = new() { MaxPromptLength = 100, MaxRequestBodyBytes = 2048 };

    private static (ExecutionRequest? Request, ProblemHttpResult? Problem) Parse(string json) =>
        ExecutionRequestReader.Parse(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(json)), Options);

    private static string? Code(ProblemHttpResult? problem) => problem?.ProblemDetails.Extensions["code"] as string;

    private static Dictionary<string, string[]> Errors(ProblemHttpResult? problem) =>
        Assert.IsType<Dictionary<string, string[]>>(problem?.ProblemDetails.Extensions["errors"]);

    [Fact]
    public void Parse_MinimalSpanishPrompt_ReturnsRequestWithDefaults()
    {
        var (request, problem) = Parse("""{"prompt": "Dime 3 números primos", "model": "mistral7b"}""");

        Assert.Null(problem);
        Assert.Equal("Dime 3 números primos", request!.Prompt);
        Assert.Equal("mistral7b", request.Model);
        Assert.Null(request.ExecutionType);
        Assert.Null(request.Parameters);
    }

    [Fact]
    public void Parse_AllFields_BindsSnakeCaseNames()
    {
        var (request, problem) = Parse("""
            {"prompt":"p","execution_type":"simple","mode":"sync","agents":["analyzer"],"tools":["calc"],
             "parameters":{"temperature":0.5,"max_tokens":64,"num_ctx":2048,"system":"be brief","seed":7,"top_p":0.9,"timeout_seconds":30}}
            """);

        Assert.Null(problem);
        var p = request!.Parameters!;
        Assert.Equal((0.5, 64, 2048, "be brief", 7L, 0.9, 30), (p.Temperature, p.MaxTokens, p.NumCtx, p.System, p.Seed, p.TopP, p.TimeoutSeconds));
        Assert.Equal(["analyzer"], request.Agents!);
    }

    [Theory]
    [InlineData("""{}""")]
    [InlineData("""{"prompt": null}""")]
    [InlineData("""{"prompt": ""}""")]
    [InlineData("""{"prompt": "  \n\t "}""")]
    public void Parse_MissingOrBlankPrompt_ValidationFailedOnPrompt(string json)
    {
        var (_, problem) = Parse(json);

        Assert.Equal(400, problem!.StatusCode);
        Assert.Equal("validation_failed", Code(problem));
        Assert.Contains("prompt", Errors(problem).Keys);
    }

    [Fact]
    public void Parse_PromptOverLimit_ValidationFailedNamingTheLimit()
    {
        var (_, problem) = Parse($$"""{"prompt": "{{new string('x', 101)}}"}""");

        Assert.Equal("validation_failed", Code(problem));
        Assert.Contains("100", Errors(problem)["prompt"][0], StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_PromptWithNul_ValidationFailed()
    {
        var (_, problem) = Parse("""{"prompt": "a\u0000b"}""");

        Assert.Equal("validation_failed", Code(problem));
        Assert.Contains("NUL", Errors(problem)["prompt"][0], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"prompt":"p","execution_type":"graph"}""", "execution_type", "simple, orchestrator")]
    [InlineData("""{"prompt":"p","mode":"later"}""", "mode", "sync, async")]
    public void Parse_UnknownEnumValue_ValidationFailedNamingAllowedValues(string json, string field, string allowed)
    {
        var (_, problem) = Parse(json);

        Assert.Equal("validation_failed", Code(problem));
        Assert.Contains(allowed, Errors(problem)[field][0], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("temperature", "2.5")]
    [InlineData("temperature", "-0.1")]
    [InlineData("max_tokens", "0")]
    [InlineData("num_ctx", "-1")]
    [InlineData("timeout_seconds", "0")]
    [InlineData("timeout_seconds", "3601")]
    [InlineData("top_p", "1.5")]
    public void Parse_ParameterOutOfRange_ValidationFailedOnThatParameter(string name, string value)
    {
        var (_, problem) = Parse($$$"""{"prompt":"p","parameters":{"{{{name}}}":{{{value}}}}}""");

        Assert.Equal("validation_failed", Code(problem));
        Assert.Equal(["parameters." + name], Errors(problem).Keys);
    }

    [Theory]
    [InlineData("temperature", "0")]
    [InlineData("temperature", "2")]
    [InlineData("timeout_seconds", "1")]
    [InlineData("timeout_seconds", "3600")]
    public void Parse_ParameterAtBoundary_Accepted(string name, string value)
    {
        var (request, problem) = Parse($$$"""{"prompt":"p","parameters":{"{{{name}}}":{{{value}}}}}""");

        Assert.Null(problem);
        Assert.NotNull(request);
    }

    [Fact]
    public void Parse_BrokenJson_InvalidJsonWithLineAndPosition()
    {
        var (_, problem) = Parse("{\n  \"prompt\": \"p\",\n  \"model\": }");

        Assert.Equal(400, problem!.StatusCode);
        Assert.Equal("invalid_json", Code(problem));
        Assert.Equal(3L, problem.ProblemDetails.Extensions["line"]);
        Assert.Contains("line 3", problem.ProblemDetails.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"prompt": 5}""", "'prompt'", "a string")]
    [InlineData("""{"prompt": "p", "parameters": "x"}""", "'parameters'", "an object")]
    [InlineData("""{"prompt": "p", "parameters": {"max_tokens": "many"}}""", "'parameters.max_tokens'", "an integer")]
    [InlineData("""[1, 2]""", "'(body)'", "an object")]
    public void Parse_WrongType_InvalidJsonNamingTheField(string json, string field, string expected)
    {
        var (_, problem) = Parse(json);

        Assert.Equal("invalid_json", Code(problem));
        Assert.Contains(field, problem!.ProblemDetails.Detail, StringComparison.Ordinal);
        Assert.Contains(expected, problem.ProblemDetails.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("  ")]
    [InlineData("null")]
    public void Parse_EmptyOrNullBody_InvalidJson(string json)
    {
        var (_, problem) = Parse(json);

        Assert.Equal("invalid_json", Code(problem));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    public async Task ReadAsync_NotJsonContentType_UnsupportedMediaType(string? contentType)
    {
        var http = Request("""{"prompt":"p"}""", contentType);

        var (_, problem) = await ExecutionRequestReader.ReadAsync(http, Options, TestContext.Current.CancellationToken);

        Assert.Equal(415, problem!.StatusCode);
        Assert.Equal("unsupported_media_type", Code(problem));
    }

    [Theory]
    [InlineData("application/json; charset=utf-8")]
    [InlineData("application/vnd.agentlab+json")]
    public async Task ReadAsync_JsonContentTypeVariants_Accepted(string contentType)
    {
        var http = Request("""{"prompt":"p"}""", contentType);

        var (request, problem) = await ExecutionRequestReader.ReadAsync(http, Options, TestContext.Current.CancellationToken);

        Assert.Null(problem);
        Assert.Equal("p", request!.Prompt);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ReadAsync_BodyOverLimit_PayloadTooLarge(bool sendContentLength)
    {
        var http = Request($$"""{"prompt":"{{new string('x', 3000)}}"}""", "application/json", sendContentLength);

        var (_, problem) = await ExecutionRequestReader.ReadAsync(http, Options, TestContext.Current.CancellationToken);

        Assert.Equal(413, problem!.StatusCode);
        Assert.Equal("body_too_large", Code(problem));
    }

    private static HttpRequest Request(string body, string? contentType, bool sendContentLength = true)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var context = new DefaultHttpContext();
        context.Request.Method = "POST";
        context.Request.ContentType = contentType;
        context.Request.Body = new MemoryStream(bytes);
        if (sendContentLength)
            context.Request.ContentLength = bytes.Length;
        return context.Request;
    }
}
