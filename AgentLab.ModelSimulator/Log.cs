namespace AgentLab.ModelSimulator;

// Source-generated log messages of the simulator; event ids are unique within this project.
// No prompt or reply text is logged.
internal static partial class Log
{
    [LoggerMessage(5001, LogLevel.Information,
        "Ollama-protocol SIMULATOR (not a real model server) listening on {Urls}; models: {Models}")]
    public static partial void SimulatorStarted(this ILogger logger, string urls, string models);

    [LoggerMessage(5002, LogLevel.Information, "Simulated fault {Fault} on {Path} for model {Model}")]
    public static partial void FaultInjected(this ILogger logger, string fault, string path, string model);

    [LoggerMessage(5003, LogLevel.Warning, "Queue full: {InFlight} requests in flight (MaxQueue {MaxQueue}); answering 503")]
    public static partial void QueueFull(this ILogger logger, int inFlight, int maxQueue);

    [LoggerMessage(5004, LogLevel.Information, "Pulled model {Model} into the simulator")]
    public static partial void ModelPulled(this ILogger logger, string model);

    [LoggerMessage(5005, LogLevel.Debug, "Client went away during a {Path} request for {Model}")]
    public static partial void ClientAborted(this ILogger logger, string path, string model);
}
