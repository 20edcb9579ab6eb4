using System.Text.Json;
using AgentLab.LabService.Orchestration.Tools;

namespace AgentLab.Tests.Orchestration.Tools;

public sealed class TextStatsToolTests
{
    [Fact]
    public void Analyze_SpanishText_CountsWordsSentencesAndTopWords()
    {
        var text = "¿Qué año es? ¡El año del niño!\nEl niño come pan. Pi vale 3.14 aprox.";

        var stats = TextStatsTool.Analyze(text);

        Assert.Equal(text.Length, stats.Characters);
        Assert.Equal(15, stats.Words);          // 3.14 is one word, and its point ends no sentence
        Assert.Equal(4, stats.Sentences);
        Assert.Equal(2, stats.Lines);
        Assert.Equal([new("año", 2), new("el", 2), new("niño", 2), new("3.14", 1), new("aprox", 1)], stats.TopWords);
        Assert.Equal(5, stats.ReadingTimeSeconds);   // 15 words at 200 wpm = 4.5 s
    }

    [Fact]
    public void Analyze_DecomposedAndPrecomposedLetters_AreOneWordAndOneCharacter()
    {
        var text = "Nin\u0303o NIÑO niño";   // "n" + combining tilde, upper case, precomposed

        var stats = TextStatsTool.Analyze(text);

        Assert.Equal(14, stats.Characters);
        Assert.Equal(12, stats.CharactersExcludingSpaces);
        Assert.Equal(3, stats.Words);
        Assert.Equal(4, stats.AverageWordLength);
        Assert.Equal([new WordCount("niño", 3)], stats.TopWords);
    }

    [Fact]
    public void Analyze_ApostrophesHyphensAndEmoji_AreHandledAsWordsAndCharacters()
    {
        var text = "Don't stop — well-known 👍🏽 ideas";

        var stats = TextStatsTool.Analyze(text);

        Assert.Equal(4, stats.Words);                // don't, stop, well-known, ideas
        Assert.Equal(31, stats.Characters);          // the emoji with its skin tone is one character
        Assert.Equal(1, stats.Sentences);
        Assert.Equal(6, stats.AverageWordLength);    // (5 + 4 + 10 + 5) / 4
    }

    [Theory]
    [InlineData("", 0, 0, 0)]
    [InlineData("one line", 1, 2, 1)]
    [InlineData("a\nb\n", 2, 2, 1)]                  // a line break alone is wrapped prose
    [InlineData("a\r\nb\rc", 3, 3, 1)]
    [InlineData("Title\n\nBody text", 3, 3, 2)]      // a blank line ends a sentence
    [InlineData("Title\r\n\r\nBody", 3, 2, 2)]
    [InlineData("...!!!", 1, 0, 0)]
    public void Analyze_LinesAndSentences_AreCountedLikeEditors(string text, int lines, int words, int sentences)
    {
        var stats = TextStatsTool.Analyze(text);

        Assert.Equal(lines, stats.Lines);
        Assert.Equal(words, stats.Words);
        Assert.Equal(sentences, stats.Sentences);
    }

    [Fact]
    public async Task InvokeAsync_Text_ReturnsSnakeCaseJson()
    {
        var tool = new TextStatsTool();
        using var args = JsonDocument.Parse("""{"text":"El sol. El mar."}""");

        var result = await tool.InvokeAsync(args.RootElement, TestContext.Current.CancellationToken);

        Assert.True(result.Ok);
        Assert.Equal("""{"characters":15,"characters_excluding_spaces":12,"words":4,"sentences":2,"lines":1,"average_word_length":2.5,"top_words":[{"word":"el","count":2},{"word":"mar","count":1},{"word":"sol","count":1}],"reading_time_seconds":2,"reading_time_minutes":0}""",
            result.Content);
    }

    [Fact]
    public async Task InvokeAsync_TextOverLimit_ReturnsError()
    {
        var tool = new TextStatsTool();
        using var args = JsonDocument.Parse(JsonSerializer.Serialize(new { text = new string('a', TextStatsTool.MaxLength + 1) }));

        var result = await tool.InvokeAsync(args.RootElement, TestContext.Current.CancellationToken);

        Assert.Equal(new ToolResult(false, "text is too long (100001 characters; at most 100000): send a shorter excerpt"), result);
    }

    [Fact]
    public async Task InvokeAsync_TextAtLimit_IsAnalysed()
    {
        var tool = new TextStatsTool();
        using var args = JsonDocument.Parse(JsonSerializer.Serialize(new { text = string.Concat(Enumerable.Repeat("palabra ", TextStatsTool.MaxLength / 8)) }));

        var result = await tool.InvokeAsync(args.RootElement, TestContext.Current.CancellationToken);

        Assert.True(result.Ok);
        Assert.Contains("\"words\":12500,", result.Content);
    }

    [Fact]
    public async Task InvokeAsync_MissingText_ReturnsError()
    {
        var tool = new TextStatsTool();
        using var args = JsonDocument.Parse("""{"txt":"hola"}""");

        var result = await tool.InvokeAsync(args.RootElement, TestContext.Current.CancellationToken);

        Assert.Equal(new ToolResult(false, "missing argument 'text' (a string)"), result);
    }

    [Fact]
    public void Analyze_LoneSurrogate_DoesNotThrow()
    {
        var stats = TextStatsTool.Analyze("hola \uD800 mundo");

        Assert.Equal(2, stats.Words);
    }
}
