using System.Globalization;
using System.Text;
using System.Text.Json;

namespace AgentLab.LabService.Orchestration.Tools;

/// <summary>
/// <c>text_stats</c>: counts of a text, Unicode-aware (accented letters, ñ, combining marks and emoji are one
/// character each; ¿ ¡ open a sentence, they do not end one). Sentences are an estimate: '.', '!', '?', '…' or a
/// blank line end one, except a '.' between digits (3.14).
/// </summary>
public sealed class TextStatsTool : ILabTool
{
    public const string ToolName = "text_stats";
    public const int MaxLength = 100_000;
    public const int WordsPerMinute = 200;
    public const int TopWordCount = 5;

    private static readonly JsonElement Schema = ToolArguments.Schema("""
        {"type":"object","properties":{"text":{"type":"string","description":"The text to analyse (at most 100000 characters)."}},"required":["text"]}
        """);

    public string Name => ToolName;

    public string Description =>
        "Counts characters, words, sentences and lines of a text, the average word length, the 5 most frequent words and the reading time at 200 words per minute.";

    public JsonElement ParametersSchema => Schema;

    public ValueTask<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        if (!ToolArguments.TryGetString(arguments, "text", out var text, out var error))
            return ValueTask.FromResult(error!);
        if (text.Length > MaxLength)
            return ValueTask.FromResult(ToolResult.Error($"text is too long ({text.Length} characters; at most {MaxLength}): send a shorter excerpt"));
        return ValueTask.FromResult(ToolResult.Success(ToJson(Analyze(text))));
    }

    /// <summary>The statistics of <paramref name="text"/>.</summary>
    public static TextStats Analyze(string text)
    {
        var characters = 0;
        var nonSpace = 0;
        var words = 0;
        var wordLetters = 0L;
        var sentences = 0;
        var sentenceHasWord = false;
        var frequencies = new Dictionary<string, int>(StringComparer.Ordinal);
        var word = new StringBuilder();
        var wordElements = 0;

        var elements = StringInfo.GetTextElementEnumerator(text);
        var previous = "";
        while (elements.MoveNext())
        {
            var element = elements.GetTextElement();
            var index = elements.ElementIndex;
            characters++;
            var isSpace = char.IsWhiteSpace(element[0]);
            if (!isSpace)
                nonSpace++;

            var next = index + element.Length;
            if (IsWordElement(element) || (word.Length > 0 && next < text.Length && IsJoiner(element, word[^1], text[next])
                    && IsWordElement(StringInfo.GetNextTextElement(text, next))))
            {
                word.Append(element);
                wordElements++;
            }
            else
            {
                EndWord();
                if (IsTerminator(element, previous, text, index) || (IsLineBreak(element) && IsLineBreak(previous)))
                {
                    if (sentenceHasWord)
                        sentences++;
                    sentenceHasWord = false;
                }
            }
            previous = element;
        }
        EndWord();
        if (sentenceHasWord)
            sentences++;

        var top = frequencies
            .OrderByDescending(pair => pair.Value)
            .ThenBy(pair => pair.Key, StringComparer.Ordinal)
            .Take(TopWordCount)
            .Select(pair => new WordCount(pair.Key, pair.Value))
            .ToList();
        var readingSeconds = (int)Math.Ceiling(words * 60.0 / WordsPerMinute);
        return new TextStats(characters, nonSpace, words, sentences, CountLines(text),
            words == 0 ? 0 : Math.Round((double)wordLetters / words, 2), top, readingSeconds,
            Math.Round(words / (double)WordsPerMinute, 1));

        void EndWord()
        {
            if (word.Length == 0)
                return;
            words++;
            wordLetters += wordElements;
            sentenceHasWord = true;
            var key = ComposeLatin(word.ToString()).ToLowerInvariant();
            frequencies[key] = frequencies.GetValueOrDefault(key) + 1;
            word.Clear();
            wordElements = 0;
        }
    }

    // The services run with InvariantGlobalization, where string.Normalize left "n" + U+0303 as it was (seen in
    // TextStatsToolTests), so it would count as a different word than "ñ". This composes the Latin letters of Spanish, Portuguese, French and German;
    // other scripts keep their combining marks (still one character each: counting is by text element).
    private static readonly Dictionary<(char Letter, char Mark), char> Compositions = BuildCompositions();

    private static string ComposeLatin(string word)
    {
        if (!word.Any(c => c is >= '\u0300' and <= '\u036F'))
            return word;
        var result = new StringBuilder(word.Length);
        foreach (var c in word)
        {
            if (result.Length > 0 && Compositions.TryGetValue((result[^1], c), out var composed))
                result[^1] = composed;
            else
                result.Append(c);
        }
        return result.ToString();
    }

    private static Dictionary<(char, char), char> BuildCompositions()
    {
        var table = new Dictionary<(char, char), char>();
        Add('\u0301', "aeiouyAEIOUY", "áéíóúýÁÉÍÓÚÝ");
        Add('\u0300', "aeiouAEIOU", "àèìòùÀÈÌÒÙ");
        Add('\u0302', "aeiouAEIOU", "âêîôûÂÊÎÔÛ");
        Add('\u0303', "anoANO", "ãñõÃÑÕ");
        Add('\u0308', "aeiouyAEIOUY", "äëïöüÿÄËÏÖÜŸ");
        Add('\u0327', "cC", "çÇ");
        return table;

        void Add(char mark, string letters, string composed)
        {
            for (var i = 0; i < letters.Length; i++)
                table[(letters[i], mark)] = composed[i];
        }
    }

    private static bool IsWordElement(string element) =>
        Rune.TryGetRuneAt(element, 0, out var rune) && Rune.IsLetterOrDigit(rune);

    // An apostrophe or hyphen inside a word keeps it one word (don't, bien-estar), a point or comma inside a number
    // keeps it one number (3.14, 1,000).
    private static bool IsJoiner(string element, char before, char after) =>
        element is "'" or "\u2019" or "-" or "\u2010" || (element is "." or "," && char.IsDigit(before) && char.IsDigit(after));

    private static bool IsTerminator(string element, string previous, string text, int index) => element switch
    {
        "!" or "?" or "\u2026" or "\u3002" => true,
        // 3.14 and 1.000 are numbers, not two sentences.
        "." => !(previous.Length == 1 && char.IsDigit(previous[0]) && index + 1 < text.Length && char.IsDigit(text[index + 1])),
        _ => false,
    };

    // "\r\n" is one text element; a blank line is two line breaks in a row (a heading, a list item's end).
    private static bool IsLineBreak(string element) => element is "\n" or "\r" or "\r\n";

    private static int CountLines(string text)
    {
        if (text.Length == 0)
            return 0;
        var lines = 1;
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '\n' || (text[i] == '\r' && (i + 1 == text.Length || text[i + 1] != '\n')))
                lines++;
        }
        // A final line break ends the last line; it does not start an empty one (as editors and wc count).
        if (text[^1] is '\n' or '\r')
            lines--;
        return lines;
    }

    private static string ToJson(TextStats stats)
    {
        using var buffer = new MemoryStream();
        // Relaxed escaping: the reader is a model, and "año" reads better than "a\u00F1o" (never embedded in HTML).
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteNumber("characters", stats.Characters);
            json.WriteNumber("characters_excluding_spaces", stats.CharactersExcludingSpaces);
            json.WriteNumber("words", stats.Words);
            json.WriteNumber("sentences", stats.Sentences);
            json.WriteNumber("lines", stats.Lines);
            json.WriteNumber("average_word_length", stats.AverageWordLength);
            json.WriteStartArray("top_words");
            foreach (var top in stats.TopWords)
            {
                json.WriteStartObject();
                json.WriteString("word", top.Word);
                json.WriteNumber("count", top.Count);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteNumber("reading_time_seconds", stats.ReadingTimeSeconds);
            json.WriteNumber("reading_time_minutes", stats.ReadingTimeMinutes);
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}

/// <summary>What <see cref="TextStatsTool"/> measured. Characters are user-perceived characters (text elements).</summary>
public sealed record TextStats(int Characters, int CharactersExcludingSpaces, int Words, int Sentences, int Lines,
    double AverageWordLength, IReadOnlyList<WordCount> TopWords, int ReadingTimeSeconds, double ReadingTimeMinutes);

public sealed record WordCount(string Word, int Count);
