using AgentLab.LabService;
using AgentLab.LabService.Inference;

namespace AgentLab.Tests.LabService;

public sealed class InferenceValidationTests
{
    private static readonly LabOptions Options = new() { MaxPromptLength = 100 };

    [Fact]
    public void Validate_ValidRequest_HasNoErrors()
    {
        var request = new InferenceRequest
        {
            Prompt = "Hello",
            Model = "mistral7b",
            Parameters = new InferenceParameters { Temperature = 2, MaxTokens = 1, NumCtx = 2048, TopP = 1, TimeoutSeconds = 0.5 },
        };

        var errors = InferenceApi.Validate(request, Options);

        Assert.Null(errors);
    }

    public static TheoryData<InferenceRequest?, string> InvalidRequests => new()
    {
        { null, "$" },
        { new InferenceRequest(), "prompt" },
        { new InferenceRequest { Prompt = "   " }, "prompt" },
        { new InferenceRequest { Prompt = new string('x', 101) }, "prompt" },
        { new InferenceRequest { Prompt = "a\0b" }, "prompt" },
        { new InferenceRequest { Prompt = "ok", System = "s\0" }, "system" },
        { new InferenceRequest { Prompt = "ok", Model = " " }, "model" },
        { new InferenceRequest { Prompt = "ok", Parameters = new() { Temperature = 2.1 } }, "parameters.temperature" },
        { new InferenceRequest { Prompt = "ok", Parameters = new() { Temperature = -0.1 } }, "parameters.temperature" },
        { new InferenceRequest { Prompt = "ok", Parameters = new() { MaxTokens = 0 } }, "parameters.max_tokens" },
        { new InferenceRequest { Prompt = "ok", Parameters = new() { NumCtx = -1 } }, "parameters.num_ctx" },
        { new InferenceRequest { Prompt = "ok", Parameters = new() { TopP = 1.5 } }, "parameters.top_p" },
        { new InferenceRequest { Prompt = "ok", Parameters = new() { TimeoutSeconds = 0 } }, "parameters.timeout_seconds" },
        { new InferenceRequest { Prompt = "ok", Parameters = new() { TimeoutSeconds = 86_401 } }, "parameters.timeout_seconds" },
        { new InferenceRequest { Prompt = "ok", Parameters = new() { TimeoutSeconds = 1e300 } }, "parameters.timeout_seconds" },
    };

    [Theory]
    [MemberData(nameof(InvalidRequests))]
    public void Validate_InvalidField_NamesTheField(InferenceRequest? request, string field)
    {
        var errors = InferenceApi.Validate(request, Options);

        Assert.NotNull(errors);
        Assert.Contains(field, errors.Keys);
    }
}
