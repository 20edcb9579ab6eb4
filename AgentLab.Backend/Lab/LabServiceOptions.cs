using System.ComponentModel.DataAnnotations;

namespace AgentLab.Backend.Lab;

/// <summary>How the Backend reaches LabService (section <c>LabService</c>).</summary>
public sealed class LabServiceOptions
{
    public const string Section = "LabService";

    /// <summary>
    /// <c>http://labservice</c> is resolved by service discovery from <c>services:labservice:http:0</c>;
    /// an absolute address (<c>http://127.0.0.1:8001</c>) is used as is.
    /// </summary>
    [Required, Url]
    public string BaseAddress { get; set; } = "http://labservice";

    /// <summary>
    /// The service credential LabService expects (its <c>ServiceAuth:Key</c>), sent as <c>Authorization: Bearer</c> on
    /// every call. The AppHost generates and injects both; unset, calls go without one (a LabService in Development).
    /// </summary>
    public string? ServiceKey { get; set; }

    /// <summary>Upper bound of one execution's LabService call when the request sets no <c>timeout_seconds</c>.</summary>
    [Range(1, 86_400)]
    public int RequestTimeoutSeconds { get; set; } = 900;

    /// <summary>
    /// Added to the request's <c>timeout_seconds</c> before the Backend gives up itself, so that LabService's own
    /// (more precise) <c>model_timeout</c> answer normally arrives first.
    /// </summary>
    [Range(0, 300)]
    public double TimeoutGraceSeconds { get; set; } = 5;

    /// <summary>TCP connect timeout: an unreachable LabService fails fast instead of hanging.</summary>
    [Range(0.1, 120)]
    public double ConnectTimeoutSeconds { get; set; } = 5;

    /// <summary>Bound of a read such as <c>GET /models/</c>.</summary>
    [Range(0.1, 600)]
    public double QueryTimeoutSeconds { get; set; } = 30;

    /// <summary>Bound of the health probes behind <c>/api/v1/health/detailed</c> and <c>/api/v1/ready</c>.</summary>
    [Range(0.1, 60)]
    public double HealthTimeoutSeconds { get; set; } = 3;

    /// <summary>The <c>Retry-After</c> (seconds) sent with <c>lab_unavailable</c>.</summary>
    [Range(1, 3600)]
    public int UnavailableRetryAfterSeconds { get; set; } = 5;
}
