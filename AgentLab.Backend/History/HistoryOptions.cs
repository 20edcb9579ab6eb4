using System.ComponentModel.DataAnnotations;

namespace AgentLab.Backend.History;

/// <summary>Page sizes of <c>GET /api/v1/history</c> and when the read APIs log a slow query (section <c>History</c>).</summary>
public sealed class HistoryOptions : IValidatableObject
{
    public const string Section = "History";

    /// <summary>Rows per page when the client sends no <c>limit</c>.</summary>
    [Range(1, 1000)] public int DefaultLimit { get; set; } = 20;

    /// <summary>The largest <c>limit</c> a client may ask for.</summary>
    [Range(1, 1000)] public int MaxLimit { get; set; } = 100;

    /// <summary>A history page or metrics query slower than this is logged as a warning.</summary>
    [Range(1, 600_000)] public int SlowQueryMilliseconds { get; set; } = 1000;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (DefaultLimit > MaxLimit)
            yield return new ValidationResult($"History:DefaultLimit ({DefaultLimit}) must not exceed History:MaxLimit ({MaxLimit}).",
                [nameof(DefaultLimit), nameof(MaxLimit)]);
    }
}
