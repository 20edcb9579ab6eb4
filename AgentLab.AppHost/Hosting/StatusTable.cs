using System.Text;

namespace AgentLab.AppHost.Hosting;

/// <summary>The short table printed once everything is up: resource, state, endpoint, restarts.</summary>
public static class StatusTable
{
    public static string Render(IEnumerable<LabResource> resources)
    {
        var rows = resources.Select(r => new[]
        {
            r.Name,
            r.State.ToString(),
            r.Endpoint?.GetLeftPart(UriPartial.Authority) ?? (r.ConnectionString is { } cs ? Secrets.RedactPasswords(cs) : "-"),
            r.RestartCount.ToString(System.Globalization.CultureInfo.InvariantCulture),
        }).ToList();
        string[] header = ["resource", "state", "endpoint", "restarts"];
        var widths = header.Select((h, i) => rows.Select(r => r[i].Length).Append(h.Length).Max()).ToArray();
        var text = new StringBuilder().AppendLine();
        AppendRow(text, header, widths);
        AppendRow(text, widths.Select(w => new string('-', w)).ToArray(), widths);
        foreach (var row in rows)
            AppendRow(text, row, widths);
        return text.AppendLine().ToString();
    }

    private static void AppendRow(StringBuilder text, string[] cells, int[] widths) =>
        text.AppendLine(string.Join("  ", cells.Select((c, i) => c.PadRight(widths[i]))).TrimEnd());
}
