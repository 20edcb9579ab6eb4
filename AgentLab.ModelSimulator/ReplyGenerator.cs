using System.Globalization;
using System.Text;
using System.Text.Json;

namespace AgentLab.ModelSimulator;

/// <summary>What a reply depends on; equal inputs give byte-identical replies on every run and machine.</summary>
public sealed record ReplyInput(
    string Model,
    string? System,
    IReadOnlyList<ChatMessage> Messages,
    long? Seed,
    JsonElement? Format,
    IReadOnlyList<ToolDefinition>? Tools,
    bool Think,
    int? NumPredict);

/// <summary>A generated reply, already cut into the tokens that are streamed one per line.</summary>
public sealed class Reply
{
    public required IReadOnlyList<string> Tokens { get; init; }
    public IReadOnlyList<string> ThinkingTokens { get; init; } = [];
    public ToolCall? ToolCall { get; init; }
    /// <summary>Tokens the tool call would cost a real model (its JSON, roughly).</summary>
    public int ToolCallTokens { get; init; }
    public required int PromptTokens { get; init; }
    public bool Truncated { get; init; }
    public int EvalCount => ThinkingTokens.Count + Tokens.Count + ToolCallTokens;
    public string DoneReason => Truncated ? "length" : "stop";
    public string Content => string.Concat(Tokens);
    public string Thinking => string.Concat(ThinkingTokens);
}

/// <summary>
/// Builds plausible, deterministic replies from a small corpus, borrowing topic words from the last user message
/// so the text reads like an answer without echoing the prompt.
/// </summary>
public static class ReplyGenerator
{
    private static readonly string[] EnglishOpeners =
        ["Sure.", "Good question.", "Here is a short answer.", "Let me explain.", "In brief:", "Happy to help."];

    private static readonly string[] English =
    [
        "When it comes to {0}, the key is to start from what is already known and build up step by step.",
        "A practical way to think about {0} is in terms of {1} and how the two interact.",
        "In short, {0} depends mostly on context, constraints and the goal you have in mind.",
        "Most people find that {0} works best when it is kept simple and measured carefully.",
        "One common mistake with {0} is to ignore {1} until late in the process.",
        "To summarise: {0} matters, {1} shapes it, and {2} is where the details live.",
        "For a concrete example, consider how {1} changes the outcome for {0}.",
        "Small, regular improvements to {0} tend to add up over time.",
        "It also helps to compare {0} with {2}, since the differences are instructive.",
        "Focus on {0} first and revisit {1} once the basics are in place.",
        "Keep three things in mind: clarity, consistency and a clear notion of {0}.",
        "Good results with {0} usually come from testing assumptions early.",
        "Keep in mind that {1} can vary a lot from one case to another.",
        "A useful rule of thumb is to treat {0} as a process rather than a single decision.",
    ];

    private static readonly string[] SpanishOpeners = ["Claro.", "Buena pregunta.", "Aquí va una respuesta breve.", "Te lo explico."];

    private static readonly string[] Spanish =
    [
        "En cuanto a {0}, lo importante es partir de lo que ya se sabe y avanzar paso a paso.",
        "Una forma práctica de pensar en {0} es en relación con {1} y cómo se influyen.",
        "En resumen, {0} depende sobre todo del contexto, las restricciones y el objetivo.",
        "Con {0} suele funcionar mejor mantener las cosas simples y medir con cuidado.",
        "Un error frecuente con {0} es dejar {1} para el final.",
        "Para resumir: {0} importa, {1} le da forma y {2} es donde están los detalles.",
        "Como ejemplo concreto, piensa en cómo {1} cambia el resultado de {0}.",
        "Las mejoras pequeñas y constantes en {0} se acumulan con el tiempo.",
        "También ayuda comparar {0} con {2}, porque las diferencias enseñan mucho.",
        "Conviene centrarse primero en {0} y volver a {1} cuando lo básico esté claro.",
    ];

    private static readonly string[] Thoughts =
    [
        "The user is asking about {0}. I should answer clearly and mention {1}.",
        "Let me think about {0} first, then how {1} fits in, and keep the answer short.",
        "Key points: {0}, {1}. A brief, structured reply should work.",
    ];

    private static readonly HashSet<string> StopWords = new(StringComparer.Ordinal)
    {
        "the", "and", "for", "are", "but", "not", "you", "your", "with", "this", "that", "what", "which", "who", "how",
        "why", "when", "where", "can", "could", "would", "should", "about", "from", "into", "please", "tell", "give",
        "explain", "write", "make", "list", "some", "any", "all", "its", "it's", "was", "were", "has", "have", "does",
        "did", "there", "their", "them", "they", "then", "than", "very", "just", "also", "like", "me", "my", "is",
        "que", "qué", "los", "las", "del", "una", "uno", "unos", "por", "para", "con", "como", "cómo", "dime", "sobre",
        "explica", "cuál", "cuáles", "cual", "son", "está", "esta", "este", "esto", "más", "pero", "sus", "les", "favor", "puedes", "quiero",
    };

    private static readonly string[] SpanishMarkers =
        [" el ", " la ", " los ", " las ", " qué ", " que ", " de ", " dime ", " por ", " cómo ", " una ", "¿", "¡", "ñ", "á", "é", "í", "ó", "ú"];

    private static readonly int[] Primes = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71];

    public static Reply Create(ReplyInput input)
    {
        var rng = new DeterministicRandom(Seed(input));
        var lastUser = input.Messages.LastOrDefault(m => m.Role == "user")?.Content ?? "";
        var spanish = IsSpanish(lastUser);
        var words = TopicWords(lastUser);
        var promptTokens = PromptTokens(input);

        var lastIsToolResult = input.Messages.Count > 0 && input.Messages[^1].Role == "tool";
        if (input.Tools is { Count: > 0 } tools && !lastIsToolResult)
            return ToolCallReply(tools, lastUser, words, rng, promptTokens);

        var budget = input.NumPredict is > 0 and var n ? n : int.MaxValue;
        var thinking = new List<string>();
        if (input.Think)
            Tokenize(Fill(Thoughts[rng.Next(Thoughts.Length)], words, spanish), thinking);

        var truncated = false;
        if (thinking.Count > budget)
        {
            thinking.RemoveRange(budget, thinking.Count - budget);
            truncated = true;
        }
        budget -= thinking.Count;

        var tokens = new List<string>(96);
        if (input.Format is { ValueKind: JsonValueKind.Object } schema)
            Chunk(SchemaValueGenerator.Generate(schema, rng, words), tokens);
        else if (input.Format is { ValueKind: JsonValueKind.String } f && f.GetString() == "json")
            Chunk(SchemaValueGenerator.GenerateFreeObject(rng, words, Fill(English[rng.Next(English.Length)], words, spanish)), tokens);
        else
            Tokenize(Text(rng, lastUser, words, spanish), tokens);

        if (tokens.Count > budget)
        {
            tokens.RemoveRange(budget, tokens.Count - budget);
            truncated = true;
        }
        return new Reply { Tokens = tokens, ThinkingTokens = thinking, PromptTokens = promptTokens, Truncated = truncated };
    }

    /// <summary>A deterministic prompt-token estimate (about four UTF-8 bytes per token, plus per-message framing).</summary>
    public static int PromptTokens(ReplyInput input)
    {
        var bytes = Encoding.UTF8.GetByteCount(input.System ?? "");
        foreach (var m in input.Messages)
            bytes += Encoding.UTF8.GetByteCount(m.Content) + 16;
        foreach (var t in input.Tools ?? [])
            bytes += (t.Function?.Name.Length ?? 0) + (t.Function?.Description?.Length ?? 0) + (t.Function?.Parameters?.GetRawText().Length ?? 0);
        return Math.Max(1, (bytes + 3) / 4);
    }

    private static ulong Seed(ReplyInput input)
    {
        var h = Hashing.Fnv1a(ModelRegistry.Normalize(input.Model));
        h = Hashing.Fnv1a(input.System, h);
        foreach (var m in input.Messages)
        {
            h = Hashing.Fnv1a(m.Role, h);
            h = Hashing.Fnv1a(m.Content, h);
            foreach (var call in m.ToolCalls ?? [])
                h = Hashing.Fnv1a(call.Function.Name, h);
        }
        h = Hashing.Fnv1a(input.Seed?.ToString(CultureInfo.InvariantCulture), h);
        h = Hashing.Fnv1a(input.Format?.GetRawText(), h);
        foreach (var t in input.Tools ?? [])
            h = Hashing.Fnv1a(t.Function?.Parameters?.GetRawText(), Hashing.Fnv1a(t.Function?.Name, h));
        return Hashing.Fnv1a(input.Think ? "think" : "", h);
    }

    private static Reply ToolCallReply(IReadOnlyList<ToolDefinition> tools, string lastUser, List<string> words,
        DeterministicRandom rng, int promptTokens)
    {
        var normalizedPrompt = lastUser.Replace('_', ' ');
        var tool = tools.FirstOrDefault(t => t.Function is { Name.Length: > 0 } fn
            && normalizedPrompt.Contains(fn.Name.Replace('_', ' '), StringComparison.OrdinalIgnoreCase)) ?? tools[0];
        var parameters = tool.Function?.Parameters ?? default;
        var arguments = parameters.ValueKind == JsonValueKind.Object
            ? SchemaValueGenerator.Generate(parameters, rng, words)
            : "{}";
        const string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
        var id = string.Create(13, rng, (span, r) =>
        {
            "call_".CopyTo(span);
            for (var i = 5; i < span.Length; i++)
                span[i] = alphabet[r.Next(alphabet.Length)];
        });
        using var doc = JsonDocument.Parse(arguments);
        var call = new ToolCall
        {
            Id = id,
            Function = new ToolCallFunction { Index = 0, Name = tool.Function?.Name ?? "", Arguments = doc.RootElement.Clone() },
        };
        return new Reply
        {
            Tokens = [],
            ToolCall = call,
            ToolCallTokens = Math.Max(1, (call.Function.Name.Length + arguments.Length + 3) / 4 + 4),
            PromptTokens = promptTokens,
        };
    }

    private static string Text(DeterministicRandom rng, string lastUser, List<string> words, bool spanish)
    {
        var corpus = spanish ? Spanish : English;
        var openers = spanish ? SpanishOpeners : EnglishOpeners;
        var target = 20 + rng.Next(61);
        var sb = new StringBuilder(512);
        sb.Append(openers[rng.Next(openers.Length)]);

        // A question about the first N primes gets the numbers, so the answer is not obviously canned.
        if ((lastUser.Contains("prim", StringComparison.OrdinalIgnoreCase)) && FirstNumber(lastUser) is > 0 and <= 20 and var count)
        {
            var list = Primes.Take(count).Select(p => p.ToString(CultureInfo.InvariantCulture)).ToArray();
            var joined = list.Length == 1 ? list[0] : string.Join(", ", list[..^1]) + (spanish ? " y " : " and ") + list[^1];
            sb.Append(' ').Append(joined).Append('.');
        }

        var last = -1;
        var approxTokens = 4;
        while (approxTokens < target)
        {
            var pick = rng.Next(corpus.Length);
            if (pick == last)
                pick = (pick + 1) % corpus.Length;
            last = pick;
            var sentence = Fill(corpus[pick], words, spanish);
            sb.Append(' ').Append(sentence);
            approxTokens += sentence.Count(c => c == ' ') + 3;
        }
        return sb.ToString();
    }

    private static string Fill(string template, List<string> words, bool spanish)
    {
        string W(int i) => words.Count == 0
            ? (spanish ? ["el tema", "los detalles", "el contexto"] : new[] { "the topic", "the details", "the context" })[i]
            : words[i % words.Count];
        return string.Format(CultureInfo.InvariantCulture, template, W(0), W(1), W(2));
    }

    private static bool IsSpanish(string text)
    {
        var padded = " " + text.ToLowerInvariant() + " ";
        return SpanishMarkers.Count(m => padded.Contains(m, StringComparison.Ordinal)) >= 2;
    }

    private static List<string> TopicWords(string text)
    {
        var words = new List<string>(3);
        foreach (var raw in text.Split([' ', '\t', '\n', '\r', ',', '.', ';', ':', '!', '?', '¿', '¡', '(', ')', '"', '\'', '[', ']', '{', '}'],
                     StringSplitOptions.RemoveEmptyEntries))
        {
            var word = raw.ToLowerInvariant();
            if (word.Length < 4 || StopWords.Contains(word) || !word.Any(char.IsLetter) || words.Contains(word))
                continue;
            words.Add(word);
            if (words.Count == 3)
                break;
        }
        return words;
    }

    private static int? FirstNumber(string text)
    {
        var start = -1;
        for (var i = 0; i <= text.Length; i++)
        {
            var digit = i < text.Length && char.IsAsciiDigit(text[i]);
            if (digit && start < 0)
                start = i;
            else if (!digit && start >= 0)
                return int.TryParse(text.AsSpan(start, Math.Min(i - start, 6)), CultureInfo.InvariantCulture, out var n) ? n : null;
        }
        return null;
    }

    /// <summary>Word pieces with their leading space; long words split in pieces of four characters.</summary>
    public static void Tokenize(string text, List<string> tokens)
    {
        var i = 0;
        while (i < text.Length)
        {
            var start = i;
            if (text[i] == ' ')
                i++;
            while (i < text.Length && text[i] != ' ')
                i++;
            var word = text.AsSpan(start, i - start);
            var letters = word.TrimStart(' ').Length;
            if (letters <= 7)
            {
                tokens.Add(word.ToString());
                continue;
            }
            for (var p = 0; p < word.Length;)
            {
                var len = Math.Min(word.Length - p, p == 0 && word[0] == ' ' ? 5 : 4);
                // Never split a surrogate pair across two tokens.
                if (p + len < word.Length && char.IsHighSurrogate(word[p + len - 1]))
                    len++;
                tokens.Add(word.Slice(p, len).ToString());
                p += len;
            }
        }
    }

    /// <summary>Cuts a JSON document into token-sized pieces whose concatenation is the document.</summary>
    private static void Chunk(string json, List<string> tokens)
    {
        for (var p = 0; p < json.Length;)
        {
            var len = Math.Min(4, json.Length - p);
            if (p + len < json.Length && char.IsHighSurrogate(json[p + len - 1]))
                len++;
            tokens.Add(json.Substring(p, len));
            p += len;
        }
    }
}
