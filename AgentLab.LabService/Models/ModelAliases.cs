namespace AgentLab.LabService.Models;

/// <summary>Pure name resolution: aliases, tag defaulting and close-match suggestions.</summary>
public static class ModelAliases
{
    /// <summary>
    /// <c>mistral7b</c> → <c>mistral:7b</c> (alias); <c>llama3.2</c> → <c>llama3.2:latest</c> (Ollama's tag default);
    /// an exact tag passes through.
    /// </summary>
    public static string Resolve(string name, IReadOnlyDictionary<string, string> aliases)
    {
        var trimmed = name.Trim();
        if (TryGetAlias(aliases, trimmed, out var target))
            trimmed = target;
        return WithDefaultTag(trimmed);
    }

    public static string WithDefaultTag(string name) =>
        name.Contains(':') ? name : name + ":latest";

    private static bool TryGetAlias(IReadOnlyDictionary<string, string> aliases, string name, out string target)
    {
        if (aliases.TryGetValue(name, out target!))
            return true;
        // Configuration binding may have replaced the case-insensitive dictionary with an ordinal one.
        foreach (var (key, value) in aliases)
        {
            if (key.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                target = value;
                return true;
            }
        }
        target = "";
        return false;
    }

    /// <summary>Up to <paramref name="max"/> names (tags and aliases) closest to <paramref name="requested"/>.</summary>
    public static IReadOnlyList<ModelMatch> CloseMatches(string requested, IEnumerable<string> tags,
        IReadOnlyDictionary<string, string> aliases, int max = 3)
    {
        var input = requested.Trim().ToLowerInvariant();
        if (input.Length == 0)
            return [];
        var tagSet = new HashSet<string>(tags, StringComparer.OrdinalIgnoreCase);
        var candidates = new List<(ModelMatch Match, int Score)>();
        foreach (var (alias, target) in aliases)
        {
            var resolved = WithDefaultTag(target);
            if (tagSet.Contains(resolved))
                candidates.Add((new ModelMatch(alias, resolved), Score(input, alias.ToLowerInvariant())));
        }
        foreach (var tag in tagSet)
        {
            var lower = tag.ToLowerInvariant();
            var baseName = lower.EndsWith(":latest", StringComparison.Ordinal) ? lower[..^7] : lower;
            candidates.Add((new ModelMatch(tag, null), Math.Min(Score(input, lower), Score(input, baseName))));
        }
        var threshold = Math.Max(2, input.Length / 2);
        return candidates
            .Where(c => c.Score <= threshold)
            .OrderBy(c => c.Score)
            .ThenBy(c => c.Match.Name, StringComparer.OrdinalIgnoreCase)
            .DistinctBy(c => c.Match.Name, StringComparer.OrdinalIgnoreCase)
            .Take(max)
            .Select(c => c.Match)
            .ToList();
    }

    // Edit distance, with a prefix in either direction counted as a near miss ("mistral" for "mistral:7b").
    private static int Score(string input, string candidate)
    {
        if (candidate.StartsWith(input, StringComparison.Ordinal) || input.StartsWith(candidate, StringComparison.Ordinal))
            return 1;
        return Levenshtein(input, candidate);
    }

    internal static int Levenshtein(string a, string b)
    {
        if (a.Length == 0) return b.Length;
        if (b.Length == 0) return a.Length;
        Span<int> previous = b.Length < 256 ? stackalloc int[b.Length + 1] : new int[b.Length + 1];
        Span<int> current = b.Length < 256 ? stackalloc int[b.Length + 1] : new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
            previous[j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }
            current.CopyTo(previous);
        }
        return previous[b.Length];
    }
}

/// <summary>A suggestion: a tag, or an alias with the tag it points at.</summary>
public sealed record ModelMatch(string Name, string? Target)
{
    public override string ToString() => Target is null ? Name : $"{Name} ({Target})";
}

/// <summary>The requested model is not on the model server; carries the closest names to suggest.</summary>
public sealed class ModelNotFoundException(string requested, string resolved, IReadOnlyList<ModelMatch> closeMatches)
    : Exception(Describe(requested, closeMatches))
{
    public string Requested { get; } = requested;
    public string Resolved { get; } = resolved;
    public IReadOnlyList<ModelMatch> CloseMatches { get; } = closeMatches;

    private static string Describe(string requested, IReadOnlyList<ModelMatch> matches) =>
        matches.Count == 0
            ? $"Model '{requested}' is not available on the model server. See GET /models/ for the models you can use, or pull it first."
            : $"Model '{requested}' is not available on the model server. Did you mean: {string.Join(", ", matches)}? See GET /models/.";
}
