using System.ComponentModel.DataAnnotations;

namespace AgentLab.Backend;

/// <summary>Browser origins allowed to call the API (section <c>Cors</c>).</summary>
public sealed class BackendCorsOptions : IValidatableObject
{
    public const string Section = "Cors";

    /// <summary>Used when <see cref="AllowedOrigins"/> is empty: the frontend and LabService's dev pages.</summary>
    public static readonly string[] DefaultOrigins = ["http://localhost:3000", "http://localhost:8001"];

    /// <summary>
    /// Exact origins (scheme://host[:port]). Left empty in code because the configuration binder appends to, rather
    /// than replaces, an array that already has items.
    /// </summary>
    public string[] AllowedOrigins { get; set; } = [];

    public string[] EffectiveOrigins => AllowedOrigins.Length > 0 ? AllowedOrigins : DefaultOrigins;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var origin in AllowedOrigins)
        {
            if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.AbsolutePath != "/" || origin.EndsWith('/'))
            {
                yield return new ValidationResult(
                    $"Cors:AllowedOrigins contains '{origin}', which is not an origin; use scheme://host[:port] with no path or trailing slash.",
                    [nameof(AllowedOrigins)]);
            }
        }
    }
}
