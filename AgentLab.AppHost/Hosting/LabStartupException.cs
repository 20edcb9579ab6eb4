namespace AgentLab.AppHost.Hosting;

/// <summary>The lab could not start; the message says what failed and what to do, and nothing is left running.</summary>
public sealed class LabStartupException : Exception
{
    public LabStartupException(string message) : base(message) { }

    public LabStartupException(string message, Exception inner) : base(message, inner) { }
}
