using AgentLab.Backend.Executions;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace AgentLab.Tests.Backend;

public sealed class ExecutionsApiTests
{
    [Theory]
    [InlineData("respond-async", true)]
    [InlineData("respond-async, wait=10", true)]
    [InlineData("return=minimal, RESPOND-ASYNC", true)]
    [InlineData("return=minimal", false)]
    [InlineData("", false)]
    public void PrefersAsync_PreferHeader_FindsRespondAsyncAmongPreferences(string prefer, bool expected)
    {
        Assert.Equal(expected, ExecutionsApi.PrefersAsync(new StringValues(prefer)));
    }

    [Theory]
    [InlineData("0f8fad5b-d9cb-469f-a165-70867728950e")]
    [InlineData("order-42:retry")]
    public void ReadIdempotencyKey_VisibleAscii_Accepted(string key)
    {
        var headers = new HeaderDictionary { ["Idempotency-Key"] = key };

        var (read, problem) = ExecutionsApi.ReadIdempotencyKey(headers);

        Assert.Equal(key, read);
        Assert.Null(problem);
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("clé")]
    public void ReadIdempotencyKey_Invalid_BadRequestWithCode(string key)
    {
        var headers = new HeaderDictionary { ["Idempotency-Key"] = key };

        var (_, problem) = ExecutionsApi.ReadIdempotencyKey(headers);

        Assert.Equal(400, problem!.StatusCode);
        Assert.Equal("invalid_idempotency_key", problem.ProblemDetails.Extensions["code"]);
    }

    [Fact]
    public void ReadIdempotencyKey_TooLong_BadRequest()
    {
        var headers = new HeaderDictionary { ["Idempotency-Key"] = new string('k', 256) };

        Assert.NotNull(ExecutionsApi.ReadIdempotencyKey(headers).Problem);
    }
}
