using System.Text.RegularExpressions;

namespace AgentLab.LabService.Orchestration.LabGraph;

/// <summary>
/// One worker's prompt file (<c>Prompts/{worker}.v{n}.md</c>): <c>## System</c> is the system prompt, the other
/// <c>## Name</c> sections are user-message templates with <c>{{placeholders}}</c>.
/// </summary>
public sealed partial class Prompt(string worker, string version, IReadOnlyDictionary<string, string> sections)
{
    public string Worker => worker;

    /// <summary>E.g. <c>analyzer.v1</c>: recorded in every node's metrics.</summary>
    public string Version => version;

    public string System => Section("System");

    public string Section(string name) => sections.TryGetValue(name, out var text) ? text
        : throw new InvalidOperationException($"Prompt {version} has no '## {name}' section.");

    /// <summary>The section with every <c>{{key}}</c> replaced; a missing value becomes an empty string.</summary>
    public string Render(string section, IReadOnlyDictionary<string, string?> values) =>
        Placeholder().Replace(Section(section), m => values.TryGetValue(m.Groups[1].Value, out var v) ? v ?? "" : "");

    [GeneratedRegex(@"\{\{([a-z_]+)\}\}")]
    private static partial Regex Placeholder();

    public static Prompt Parse(string worker, string version, string text)
    {
        var sections = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        string? current = null;
        var body = new List<string>();
        void Flush()
        {
            if (current is not null)
                sections[current] = string.Join('\n', body).Trim();
            body.Clear();
        }
        foreach (var line in text.ReplaceLineEndings("\n").Split('\n'))
        {
            if (line.StartsWith("## ", StringComparison.Ordinal))
            {
                Flush();
                current = line[3..].Trim();
            }
            else if (current is not null)
                body.Add(line);
        }
        Flush();
        return new Prompt(worker, version, sections);
    }
}

/// <summary>The prompt files, loaded once; each worker uses its highest version present.</summary>
public sealed partial class PromptLibrary
{
    private readonly Dictionary<string, Prompt> _prompts;

    public PromptLibrary(string directory)
    {
        Directory = directory;
        if (!System.IO.Directory.Exists(directory))
            throw new DirectoryNotFoundException($"The prompt folder '{directory}' does not exist; it is copied next to LabService's binary.");
        _prompts = System.IO.Directory.EnumerateFiles(directory, "*.md")
            .Select(path => (Path: path, Match: FileName().Match(Path.GetFileName(path))))
            .Where(f => f.Match.Success)
            .GroupBy(f => f.Match.Groups[1].Value, StringComparer.OrdinalIgnoreCase)
            .Select(g => g.OrderByDescending(f => int.Parse(f.Match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture)).First())
            .ToDictionary(f => f.Match.Groups[1].Value,
                f => Prompt.Parse(f.Match.Groups[1].Value, Path.GetFileNameWithoutExtension(f.Path), File.ReadAllText(f.Path)),
                StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>Where LabService's prompt files are copied: <c>{AppContext.BaseDirectory}/Prompts</c>.</summary>
    public static string DefaultDirectory => Path.Combine(AppContext.BaseDirectory, "Prompts");

    public string Directory { get; }

    public Prompt Get(string worker) => _prompts.TryGetValue(worker, out var prompt) ? prompt
        : throw new InvalidOperationException($"No prompt file for worker '{worker}' in '{Directory}' (expected {worker}.v1.md).");

    [GeneratedRegex(@"^([a-z_]+)\.v(\d+)\.md$", RegexOptions.IgnoreCase)]
    private static partial Regex FileName();
}
