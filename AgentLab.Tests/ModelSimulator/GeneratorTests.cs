using System.Text.Json;
using AgentLab.ModelSimulator;

namespace AgentLab.Tests.ModelSimulator;

public sealed class GeneratorTests
{
    private static ReplyInput Input(string prompt, long? seed = null, int? numPredict = null) =>
        new("mistral:7b", null, [new ChatMessage { Role = "user", Content = prompt }], seed, null, null, Think: false, numPredict);

    [Fact]
    public void Reply_SameInput_IsIdentical_AndItsLengthIsBounded()
    {
        var a = ReplyGenerator.Create(Input("How do glaciers form?", seed: 42));
        var b = ReplyGenerator.Create(Input("How do glaciers form?", seed: 42));

        Assert.Equal(a.Tokens, b.Tokens);
        Assert.InRange(a.Tokens.Count, 20, 120);
        Assert.Contains("glaciers", a.Content, StringComparison.Ordinal);
    }

    [Fact]
    public void Reply_PrimeQuestion_ListsThePrimes()
    {
        var reply = ReplyGenerator.Create(Input("Dime 3 números primos"));

        Assert.Contains("2, 3 y 5", reply.Content, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("A plain sentence with extraordinarily long words like internationalization.")]
    [InlineData("Emoji 🙂 and accents: canción, naïve")]
    public void Tokenize_TokensConcatenateToTheText_WithLeadingSpaces(string text)
    {
        var tokens = new List<string>();

        ReplyGenerator.Tokenize(text, tokens);

        Assert.Equal(text, string.Concat(tokens));
        Assert.All(tokens.Skip(1).Where(t => t.StartsWith(' ')), t => Assert.False(t.StartsWith("  ", StringComparison.Ordinal)));
        Assert.True(tokens.Count > text.Split(' ').Length, "long words are split into pieces");
    }

    [Fact]
    public void Schema_RefsAnyOfAndUniqueEnumArrays_GiveValidValues()
    {
        using var schema = JsonDocument.Parse("""
            {"type":"object","required":["a","b","c"],"$defs":{"pos":{"type":"integer","minimum":5,"maximum":5}},
             "properties":{"a":{"$ref":"#/$defs/pos"},"b":{"anyOf":[{"type":"null"},{"type":"string","maxLength":3}]},
             "c":{"type":"array","uniqueItems":true,"minItems":2,"items":{"enum":["x","y"]}}}}
            """);

        var json = SchemaValueGenerator.Generate(schema.RootElement, new DeterministicRandom(1), ["word"]);

        using var value = JsonDocument.Parse(json);
        Assert.Equal(5, value.RootElement.GetProperty("a").GetInt32());
        Assert.True(value.RootElement.GetProperty("b").GetString()!.Length <= 3);
        Assert.Equal(["x", "y"], value.RootElement.GetProperty("c").EnumerateArray().Select(e => e.GetString()).Order());
    }

    [Theory]
    [InlineData("10m", 600)]
    [InlineData("1h30m", 5400)]
    [InlineData("300", 300)]
    [InlineData("0", 0)]
    [InlineData("-1", -1)]
    [InlineData("-5m", -1)]
    public void KeepAlive_ParsesOllamaForms(string text, int seconds)
    {
        Assert.True(KeepAlive.TryParse(text, out var value, out _));

        Assert.Equal(TimeSpan.FromSeconds(seconds), value);
    }
}

public sealed class OptionsValidationTests
{
    [Fact]
    public async Task StartAsync_InvalidOptions_FailsAtStartWithTheReason()
    {
        var options = new SimulatorOptions { TokenLatencyMs = -1 };
        options.Models.Add(new SimulatedModel { Name = "bad:1b", Fault = "explode" });

        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(
            () => SimulatorHost.StartAsync(options, TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken));

        Assert.Contains(error.Failures, f => f.Contains("TokenLatencyMs", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("bad:1b", StringComparison.Ordinal));
    }
}
