using System.Text.Json;
using System.Text.Json.Serialization;

namespace AgentLab.AppHost.Dashboard;

/// <summary>The dashboard API's JSON: snake_case like the services' wire contract, nulls left out.</summary>
public static class DashboardJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null, // attribute names (gen_ai.request.model) are shown as sent
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };
}
