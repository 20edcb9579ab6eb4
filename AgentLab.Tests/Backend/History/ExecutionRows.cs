using AgentLab.Backend.Data;
using AgentLab.Tests.Support;

namespace AgentLab.Tests.Backend.History;

/// <summary>Executions as the store would have left them, for arranging history and metrics tests.</summary>
internal static class ExecutionRows
{
    public static readonly DateTimeOffset Day = new(2026, 11, 21, 0, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// A row in <paramref name="status"/>; finished ones carry timings and tokens, unfinished ones a lease (the
    /// schema's CHECK demands it), owned by <paramref name="owner"/>. Ids are UUIDv7 of <paramref name="createdAt"/> like the Backend's.
    /// </summary>
    public static ExecutionRecord Row(string status, DateTimeOffset createdAt, string type = "simple", string? model = "mistral:7b",
        double? durationMs = 1000, double? ttftMs = 100, int? promptTokens = 10, int? completionTokens = 20, double? tokensPerSecond = 40,
        string? errorCode = null, Guid? id = null, string owner = TestTokens.DefaultSubject)
    {
        var finished = ExecutionStatus.IsTerminal(status);
        return new ExecutionRecord
        {
            Id = id ?? Guid.CreateVersion7(createdAt),
            // The default test client's subject, so the API under test shows the row to it.
            Owner = owner,
            ExecutionType = type,
            Mode = "sync",
            Model = model,
            ModelServer = "simulator",
            Status = status,
            Request = """{"prompt":"secret prompt"}""",
            RequestHash = "hash",
            Output = finished ? "secret output" : null,
            ErrorCode = errorCode ?? (status is ExecutionStatus.Failed or ExecutionStatus.TimedOut ? status == ExecutionStatus.Failed ? "model_error" : "timeout" : null),
            ErrorMessage = status is ExecutionStatus.Failed or ExecutionStatus.TimedOut ? "it went wrong" : null,
            CreatedAt = createdAt,
            StartedAt = status == ExecutionStatus.Queued ? null : createdAt.AddMilliseconds(5),
            CompletedAt = finished ? createdAt.AddMilliseconds(5 + (durationMs ?? 0)) : null,
            DurationMs = finished ? durationMs : null,
            TimeToFirstTokenMs = finished ? ttftMs : null,
            PromptTokens = finished ? promptTokens : null,
            CompletionTokens = finished ? completionTokens : null,
            TokensPerSecond = finished ? tokensPerSecond : null,
            ModelCalls = finished ? 1 : 0,
            Attempt = status == ExecutionStatus.Queued ? 0 : 1,
            LeaseOwner = finished ? null : "replica-a",
            // Held by a live replica elsewhere: a lapsed lease would let the Backend under test take the row over and run it.
            LeaseExpiresAt = finished ? null : DateTimeOffset.UtcNow.AddHours(1),
        };
    }

    public static async Task InsertAsync(TestDatabase database, IEnumerable<ExecutionRecord> rows, CancellationToken ct)
    {
        await using var db = database.CreateContext();
        db.Executions.AddRange(rows);
        await db.SaveChangesAsync(ct);
    }
}
