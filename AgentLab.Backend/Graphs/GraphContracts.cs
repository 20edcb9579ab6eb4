using System.Text.Json;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AgentLab.Backend.Graphs;

/// <summary>One entry of <c>GET /api/v1/graphs</c>.</summary>
public sealed class GraphSummary
{
    /// <summary>The subject that registered it (an admin's list holds every owner's graphs).</summary>
    public required string Owner { get; set; }
    public required string Name { get; set; }
    public string? Description { get; set; }
    public int Nodes { get; set; }
    public int Version { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

/// <summary>The body of <c>GET /api/v1/graphs</c>, ordered by name.</summary>
public sealed class GraphList
{
    public required IReadOnlyList<GraphSummary> Graphs { get; set; }
}

/// <summary>A registered graph with its definition (<c>GET /api/v1/graphs/{name}</c>, and the answer to a registration).</summary>
public sealed class GraphDetail
{
    public required string Owner { get; set; }
    public required string Name { get; set; }
    public string? Description { get; set; }
    public int Nodes { get; set; }
    public int Version { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
    public JsonElement Definition { get; set; }

    public static GraphDetail From(GraphRecord record)
    {
        using var document = JsonDocument.Parse(record.Definition);
        var root = document.RootElement;
        return new GraphDetail
        {
            Owner = record.Owner,
            Name = record.Name,
            Description = root.TryGetProperty("description", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null,
            Nodes = root.TryGetProperty("nodes", out var n) && n.ValueKind == JsonValueKind.Array ? n.GetArrayLength() : 0,
            Version = record.Version,
            CreatedAt = record.CreatedAt,
            UpdatedAt = record.UpdatedAt,
            Definition = root.Clone(),
        };
    }
}

/// <summary>LabService's answer when a definition is valid.</summary>
public sealed class GraphValidation
{
    public bool Valid { get; set; }
    public required string Name { get; set; }
    public int Nodes { get; set; }
    public int Edges { get; set; }
    public int MaxSteps { get; set; }
}

/// <summary>The Backend's own bounds on a definition LabService found valid (LabService allows up to 100 steps).</summary>
public static class GraphBounds
{
    /// <summary>
    /// 400 <c>invalid_graph</c> (the shape of LabService's field errors: <c>errors</c> of <c>{path, message}</c>) when
    /// the graph's effective <c>max_steps</c> is over <c>Orchestrator:MaxStepsLimit</c>; null otherwise.
    /// </summary>
    public static ProblemHttpResult? Check(GraphValidation validation, int maxStepsLimit)
    {
        if (validation.MaxSteps <= maxStepsLimit)
            return null;
        var message = $"'max_steps' is {validation.MaxSteps}; this Backend allows at most {maxStepsLimit} (Orchestrator:MaxStepsLimit). " +
            $"Set max_steps to {maxStepsLimit} or less.";
        return Problems.Create(StatusCodes.Status400BadRequest, "invalid_graph", "The graph definition is not valid",
            $"1 problem(s); the first: max_steps: {message}",
            [new("errors", new[] { new Dictionary<string, string> { ["path"] = "max_steps", ["message"] = message } })]);
    }
}
