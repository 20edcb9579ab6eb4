using System.Text.Json;

namespace AgentLab.LabService.Orchestration.Tools;

/// <summary>Reads the model's arguments object leniently, turning every shape problem into a message for the model.</summary>
internal static class ToolArguments
{
    /// <summary>
    /// The string argument <paramref name="name"/>, or an error. A number or boolean is accepted as its JSON text because
    /// small models often send <c>{"expression": 42}</c>; objects and arrays are not.
    /// </summary>
    public static bool TryGetString(JsonElement arguments, string name, out string value, out ToolResult? error)
    {
        value = "";
        error = null;
        if (arguments.ValueKind != JsonValueKind.Object)
        {
            error = ToolResult.Error($"arguments must be a JSON object like {{\"{name}\": \"...\"}}, not {Describe(arguments.ValueKind)}");
            return false;
        }
        JsonElement property = default;
        var found = false;
        foreach (var candidate in arguments.EnumerateObject())
        {
            // Case-insensitive: "Expression" is an obvious intent, not worth a failed call.
            if (candidate.NameEquals(name) || string.Equals(candidate.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                property = candidate.Value;
                found = true;
                break;
            }
        }
        if (!found || property.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            error = ToolResult.Error($"missing argument '{name}' (a string)");
            return false;
        }
        switch (property.ValueKind)
        {
            case JsonValueKind.String:
                value = property.GetString() ?? "";
                return true;
            case JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False:
                value = property.GetRawText();
                return true;
            default:
                error = ToolResult.Error($"argument '{name}' must be a string, not {Describe(property.ValueKind)}");
                return false;
        }
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };

    public static JsonElement Schema(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }
}
