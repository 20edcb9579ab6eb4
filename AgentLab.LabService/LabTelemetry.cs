using System.Diagnostics;
using System.Diagnostics.Metrics;
using AgentLab.ServiceDefaults;

namespace AgentLab.LabService;

/// <summary>The LabService's ActivitySource and Meter (both named <see cref="Name"/>).</summary>
public static class LabTelemetry
{
    public const string Name = "AgentLab.LabService";

    public static readonly ActivitySource ActivitySource = new(Name);

    public static readonly Meter Meter = new(Name);

    public static readonly Histogram<double> TimeToFirstToken = Meter.CreateHistogram<double>(
        "agentlab.model.time_to_first_token", "s", "Time from sending a model call to its first token.");

    public static readonly Histogram<double> OperationDuration = Meter.CreateHistogram<double>(
        "gen_ai.client.operation.duration", "s", "Duration of a model call, success or failure.");

    public static readonly Counter<long> Tokens = Meter.CreateCounter<long>(
        "agentlab.model.tokens", "{token}", "Tokens read (input) and generated (output) by model calls.");

    /// <summary>
    /// A graph node's span (<c>node executor</c>): the model calls it makes are its children, and carry its name in
    /// <c>agentlab.node</c> too, so a trace reads node by node.
    /// </summary>
    public static Activity? StartNode(string node, int attempt, int step)
    {
        var activity = ActivitySource.StartActivity($"node {node}", ActivityKind.Internal);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(AgentLabExecution.NodeKey, node);
            activity.SetTag("agentlab.node.attempt", attempt);
            activity.SetTag("agentlab.graph.step", step);
        }
        return activity;
    }

    /// <summary>The node whose span is <paramref name="activity"/> or one of its ancestors in this process, if any.</summary>
    public static string? NodeOf(Activity? activity)
    {
        for (var a = activity; a is not null; a = a.Parent)
        {
            if (a.GetTagItem(AgentLabExecution.NodeKey) is string node)
                return node;
        }
        return null;
    }
}
