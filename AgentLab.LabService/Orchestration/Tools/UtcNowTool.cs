using System.Globalization;
using System.Text;
using System.Text.Json;

namespace AgentLab.LabService.Orchestration.Tools;

/// <summary><c>current_time</c>: the current UTC time (ISO 8601, whole seconds) and weekday, from the injected clock.</summary>
public sealed class UtcNowTool(TimeProvider time) : ILabTool
{
    public const string ToolName = "current_time";

    private static readonly JsonElement Schema = ToolArguments.Schema("""{"type":"object","properties":{}}""");

    public string Name => ToolName;

    public string Description => "Returns the current date and time in UTC (ISO 8601) and the day of the week. Takes no arguments.";

    public JsonElement ParametersSchema => Schema;

    // Arguments are ignored: a model that sends {"timezone": "..."} still gets UTC, which the answer says.
    public ValueTask<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var now = time.GetUtcNow().UtcDateTime;
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("utc", now.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
            json.WriteString("weekday", now.DayOfWeek.ToString());
            json.WriteString("date", now.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
            json.WriteString("time", now.ToString("HH:mm:ss", CultureInfo.InvariantCulture));
            json.WriteEndObject();
        }
        return ValueTask.FromResult(ToolResult.Success(Encoding.UTF8.GetString(buffer.ToArray())));
    }
}
