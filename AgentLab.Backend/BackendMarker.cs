namespace AgentLab.Backend;

/// <summary>
/// A public type from the Backend assembly for <c>WebApplicationFactory&lt;BackendMarker&gt;</c>: both services
/// have a top-level (global) <c>Program</c>, so <c>Program</c> cannot name either of them from the test project.
/// </summary>
public sealed class BackendMarker;
