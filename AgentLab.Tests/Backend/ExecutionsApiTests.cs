using AgentLab.Backend.Executions;
using Microsoft.Extensions.Primitives;

namespace AgentLab.Tests.Backend;

public sealed class ExecutionsApiTests
{
    [Theory]
    [InlineData("orchestrator", null, "", "orchestrator")]
    [InlineData(null, "async", "", "async")]
    [InlineData("simple", null, "respond-async, wait=10", "async")]
    public void NotYetAvailable_LaterFeatures_NotImplemented(string? type, string? mode, string prefer, string mentions)
    {
        var request = new ExecutionRequest { Prompt = "p", ExecutionType = type, Mode = mode };

        var problem = ExecutionsApi.NotYetAvailable(request, new StringValues(prefer));

        Assert.Equal(501, problem!.StatusCode);
        Assert.Equal("not_implemented", problem.ProblemDetails.Extensions["code"]);
        Assert.Contains(mentions, problem.ProblemDetails.Detail, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData(null, null, "")]
    [InlineData("simple", "sync", "return=minimal")]
    public void NotYetAvailable_SimpleSync_Null(string? type, string? mode, string prefer)
    {
        var request = new ExecutionRequest { Prompt = "p", ExecutionType = type, Mode = mode };

        var problem = ExecutionsApi.NotYetAvailable(request, new StringValues(prefer));

        Assert.Null(problem);
    }
}
