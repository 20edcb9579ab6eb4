namespace AgentLab.LabService;

/// <summary>
/// A public type of this assembly for <c>WebApplicationFactory&lt;LabServiceMarker&gt;</c>: both services have a
/// global <c>Program</c>, so tests cannot name it.
/// </summary>
public sealed class LabServiceMarker;
