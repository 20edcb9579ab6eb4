using System.Diagnostics;
using System.Diagnostics.Metrics;

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
}
