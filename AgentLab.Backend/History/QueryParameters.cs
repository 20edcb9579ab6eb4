using System.Globalization;
using System.Text.RegularExpressions;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AgentLab.Backend.History;

/// <summary>
/// Reads the query-string parameters the read APIs share (<c>from</c>, <c>to</c>), collecting one message per bad
/// field, and the <c>validation_failed</c> problem that lists them (the same shape as the execute body's).
/// </summary>
public sealed partial class QueryParameters
{
    private Dictionary<string, string[]>? errors;

    /// <summary>The field errors so far (snake_case names), or null when every field was valid.</summary>
    public IReadOnlyDictionary<string, string[]>? Errors => errors;

    public void Add(string field, string message) => (errors ??= new(StringComparer.Ordinal))[field] = [message];

    /// <summary>
    /// An ISO 8601 date-time with an offset (<c>2026-11-21T10:00:00Z</c>, <c>...+01:00</c>). A time without an
    /// offset is refused rather than guessed: the server's zone is not the client's.
    /// </summary>
    public DateTimeOffset? Timestamp(string field, string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
            return null;
        // An unescaped '+' in a query string arrives as a space ("...T10:00:00 01:00"): take it as the '+' it was.
        var text = value.Trim();
        var offsetWithSpace = SpacedOffset().Match(text);
        if (offsetWithSpace.Success)
            text = text[..offsetWithSpace.Index] + "+" + offsetWithSpace.Groups[1].Value;

        if (!IsoWithOffset().IsMatch(text)
            || !DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out var parsed))
        {
            Add(field, $"'{Shorten(value)}' is not an ISO 8601 date-time with an offset; send e.g. 2026-11-21T10:00:00Z or " +
                "2026-11-21T11:00:00%2B01:00 ('+' must be escaped as %2B in a query string).");
            return null;
        }
        // Npgsql writes timestamptz parameters only in UTC; the instant is the same.
        return parsed.ToUniversalTime();
    }

    /// <summary><c>from</c> and <c>to</c>: a half-open window [from, to); either may be left out.</summary>
    public (DateTimeOffset? From, DateTimeOffset? To) Window(string? from, string? to)
    {
        var start = Timestamp("from", from);
        var end = Timestamp("to", to);
        if (start is { } s && end is { } e && s > e)
        {
            Add("to", $"'to' ({e:O}) is before 'from' ({s:O}); the window is [from, to).");
            return (null, null);
        }
        return (start, end);
    }

    /// <summary>The problem that lists every bad field, or null when there were none.</summary>
    public ProblemHttpResult? Problem() => errors is null
        ? null
        : Problems.Create(StatusCodes.Status400BadRequest, "validation_failed", "The request is not valid",
            $"Fix the query parameters listed in 'errors' ({string.Join(", ", errors.Keys)}) and send it again.",
            [new("errors", errors)]);

    /// <summary>An echo of a client's value, cut short so a huge parameter does not make a huge problem.</summary>
    public static string Shorten(string value) => value.Length <= 64 ? value : value[..61] + "...";

    // Date, 'T', hours and minutes, optional seconds and fraction, then the offset: the RFC 3339 profile of ISO 8601.
    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)$",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex IsoWithOffset();

    [GeneratedRegex(@"\s(\d{2}(?::?\d{2})?)$", RegexOptions.CultureInvariant)]
    private static partial Regex SpacedOffset();
}
