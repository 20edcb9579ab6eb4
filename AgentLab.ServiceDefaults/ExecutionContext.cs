using System.Diagnostics;

namespace AgentLab.ServiceDefaults;

/// <summary>The execution ID that ties a Backend request, its LabService call and every model call together.</summary>
public static class AgentLabExecution
{
    /// <summary>Baggage key and span attribute name.</summary>
    public const string ExecutionIdKey = "agentlab.execution_id";

    /// <summary>The execution ID of the current operation, read from baggage, if any.</summary>
    public static string? CurrentId => Activity.Current?.GetBaggageItem(ExecutionIdKey);

    /// <summary>STUB: sets the execution ID as baggage and span tag on the current activity.</summary>
    public static void SetCurrentId(Guid executionId)
    {
        var activity = Activity.Current;
        activity?.SetBaggage(ExecutionIdKey, executionId.ToString());
        activity?.SetTag(ExecutionIdKey, executionId.ToString());
    }
}
