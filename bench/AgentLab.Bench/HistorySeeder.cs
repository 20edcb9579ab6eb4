using System.Diagnostics;
using System.Text;
using AgentLab.Backend.Data;
using Npgsql;
using NpgsqlTypes;

namespace AgentLab.Bench;

/// <summary>
/// Fills <c>executions</c> with a realistic history through one binary COPY: 85 % completed, 8 % failed, 3 % timed
/// out, 2 % cancelled, 2 % queued or running (with a lease); five models of unequal popularity; 75 % simple and 25 %
/// orchestrator runs; created over the last 90 days in insertion order (as a live system writes them); durations,
/// time to first token and tokens drawn from log-normal distributions and consistent with each other. Optionally
/// (<see cref="SeedEventsAsync"/>) the event log of each of them.
/// </summary>
internal static class HistorySeeder
{
    private static readonly (string Name, double Weight, double TokensPerSecond)[] Models =
    [
        ("mistral:7b", 0.35, 48), ("llama3.1:8b", 0.25, 42), ("qwen2.5:7b", 0.20, 45), ("phi3:mini", 0.12, 70), ("gemma2:9b", 0.08, 35),
    ];

    private const string Columns = "id, execution_type, mode, model, model_server, status, request, request_hash, output, error_code, " +
        "error_message, flow, created_at, started_at, completed_at, duration_ms, time_to_first_token_ms, load_duration_ms, prompt_tokens, " +
        "completion_tokens, tokens_per_second, model_calls, attempt, lease_owner, lease_expires_at";

    /// <summary>Seeds <paramref name="rows"/> executions ending at <paramref name="now"/>; returns how long the COPY took.</summary>
    public static async Task<TimeSpan> SeedAsync(string connectionString, int rows, DateTimeOffset now, CancellationToken ct)
    {
        var random = new Random(20261121);
        var prompts = Texts(random, 48, 40, 600, "Explain, step by step, how ");
        var outputs = Texts(random, 48, 200, 1500, "Here is the answer: ");
        var start = now.AddDays(-90);
        var step = TimeSpan.FromDays(90).Ticks / (double)rows;

        var clock = Stopwatch.StartNew();
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using (var writer = await connection.BeginBinaryImportAsync($"COPY executions ({Columns}) FROM STDIN (FORMAT BINARY)", ct))
        {
            for (var i = 0; i < rows; i++)
            {
                var createdAt = start.AddTicks((long)((i + random.NextDouble() * 0.9) * step));
                Write(writer, random, createdAt, now, prompts, outputs, i);
                if (i % 100_000 == 99_999)
                    Console.Write($"\r  {i + 1:N0} rows written...");
            }
            Console.Write("\r  committing (the rollup trigger aggregates the whole COPY in one statement)...");
            await writer.CompleteAsync(ct);
        }
        Console.WriteLine();
        return clock.Elapsed;
    }

    /// <summary>
    /// Gives every seeded execution its event log, in one INSERT … SELECT: a finished one has
    /// <paramref name="eventsPerExecution"/> events (queued, started, token events of a few words, and the event that
    /// ended it), a running one all but the last, a queued one only the first. Returns how long it took.
    /// </summary>
    public static async Task<TimeSpan> SeedEventsAsync(string connectionString, int eventsPerExecution, CancellationToken ct)
    {
        var finished = string.Join(", ", ExecutionStatus.Terminal.Select(s => $"'{s}'"));
        var sql = $$"""
            INSERT INTO execution_events (execution_id, seq, type, node, data, ts)
            SELECT e.id, s.seq,
                   CASE WHEN s.seq = 1 THEN '{{EventTypes.ExecutionQueued}}'
                        WHEN s.seq = 2 THEN '{{EventTypes.ExecutionStarted}}'
                        WHEN s.seq = {{eventsPerExecution}} AND e.status IN ({{finished}}) THEN
                            CASE e.status WHEN '{{ExecutionStatus.Completed}}' THEN '{{EventTypes.ExecutionCompleted}}'
                                          WHEN '{{ExecutionStatus.Cancelled}}' THEN '{{EventTypes.ExecutionCancelled}}'
                                          ELSE '{{EventTypes.ExecutionFailed}}' END
                        ELSE '{{EventTypes.Token}}' END,
                   NULL,
                   CASE WHEN s.seq > 2 AND s.seq < {{eventsPerExecution}} THEN '{"text":"chunk of text "}'::jsonb ELSE '{}'::jsonb END,
                   e.created_at + (s.seq - 1) * interval '10 milliseconds'
            FROM executions e
            CROSS JOIN LATERAL generate_series(1, CASE WHEN e.status = '{{ExecutionStatus.Queued}}' THEN 1
                                                       WHEN e.status IN ({{finished}}) THEN {{eventsPerExecution}}
                                                       ELSE {{eventsPerExecution - 1}} END) AS s(seq)
            """;
        var clock = Stopwatch.StartNew();
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        await command.ExecuteNonQueryAsync(ct);
        return clock.Elapsed;
    }

    private static void Write(NpgsqlBinaryImporter writer, Random random, DateTimeOffset createdAt, DateTimeOffset now,
        string[] prompts, string[] outputs, int i)
    {
        var roll = random.NextDouble();
        var status = roll switch
        {
            < 0.85 => "completed",
            < 0.93 => "failed",
            < 0.96 => "timed_out",
            < 0.98 => "cancelled",
            < 0.99 => "running",
            _ => "queued",
        };
        var orchestrator = random.NextDouble() < 0.25;
        var model = PickModel(random);
        var finished = status is "completed" or "failed" or "timed_out" or "cancelled";
        var calls = orchestrator ? 4 + random.Next(5) : 1;

        // What a model call reports, then what the execution around it took.
        var promptTokens = (int)Math.Round(LogNormal(random, orchestrator ? 900 : 150, 0.6)) + 5;
        var completionTokens = (int)Math.Round(LogNormal(random, orchestrator ? 1200 : 250, 0.7)) + 1;
        var tokensPerSecond = Math.Max(3, model.TokensPerSecond * (1 + 0.12 * Normal(random)));
        var ttft = LogNormal(random, orchestrator ? 450 : 250, 0.5);
        var load = random.NextDouble() < 0.03 ? LogNormal(random, 4000, 0.3) : LogNormal(random, 15, 0.4);
        var duration = ttft + completionTokens / tokensPerSecond * 1000 + LogNormal(random, 30 * calls, 0.5);
        string? errorCode = null, errorMessage = null;
        switch (status)
        {
            case "failed":
                duration = LogNormal(random, 900, 1.0);
                completionTokens = random.NextDouble() < 0.5 ? 0 : completionTokens / 3;
                (errorCode, errorMessage) = random.NextDouble() < 0.6
                    ? ("model_unavailable", "The model server answered 503: model is loading")
                    : ("model_error", "The model server stopped the stream with an error");
                break;
            case "timed_out":
                duration = 120_000 + LogNormal(random, 50, 0.5);
                completionTokens = (int)(tokensPerSecond * 110);
                (errorCode, errorMessage) = ("timeout", "No answer within 120 s (parameters.timeout_seconds)");
                break;
            case "cancelled":
                duration = duration * random.NextDouble();
                completionTokens = (int)(completionTokens * random.NextDouble());
                (errorCode, errorMessage) = ("cancelled", "Cancelled by the client");
                break;
        }
        var startedAt = status == "queued" ? (DateTimeOffset?)null : createdAt.AddMilliseconds(LogNormal(random, 3, 0.8));

        writer.StartRow();
        writer.Write(Guid.CreateVersion7(createdAt), NpgsqlDbType.Uuid);
        writer.Write(orchestrator ? "orchestrator" : "simple", NpgsqlDbType.Text);
        writer.Write(random.NextDouble() < 0.5 ? "sync" : "async", NpgsqlDbType.Text);
        writer.Write(model.Name, NpgsqlDbType.Text);
        writer.Write("ollama", NpgsqlDbType.Text);
        writer.Write(status, NpgsqlDbType.Text);
        writer.Write($$"""{"prompt":"{{prompts[i % prompts.Length]}}","model":"{{model.Name}}"}""", NpgsqlDbType.Jsonb);
        writer.Write(i.ToString("x64", System.Globalization.CultureInfo.InvariantCulture), NpgsqlDbType.Text);
        WriteOrNull(writer, status == "completed" ? outputs[i % outputs.Length] : null, NpgsqlDbType.Text);
        WriteOrNull(writer, errorCode, NpgsqlDbType.Text);
        WriteOrNull(writer, errorMessage, NpgsqlDbType.Text);
        WriteOrNull(writer, orchestrator && finished ? """{"edges":[{"from":"analyzer","to":"executor"},{"from":"executor","to":"validator"}],"iterations":1}""" : null, NpgsqlDbType.Jsonb);
        writer.Write(createdAt, NpgsqlDbType.TimestampTz);
        WriteOrNull(writer, startedAt, NpgsqlDbType.TimestampTz);
        WriteOrNull(writer, finished ? startedAt!.Value.AddMilliseconds(duration) : (DateTimeOffset?)null, NpgsqlDbType.TimestampTz);
        WriteOrNull(writer, finished ? duration : (double?)null, NpgsqlDbType.Double);
        WriteOrNull(writer, finished && status != "failed" ? ttft : (double?)null, NpgsqlDbType.Double);
        WriteOrNull(writer, finished ? load : (double?)null, NpgsqlDbType.Double);
        WriteOrNull(writer, finished ? promptTokens : (int?)null, NpgsqlDbType.Integer);
        WriteOrNull(writer, finished ? completionTokens : (int?)null, NpgsqlDbType.Integer);
        WriteOrNull(writer, finished && completionTokens > 0 ? tokensPerSecond : (double?)null, NpgsqlDbType.Double);
        writer.Write(finished ? calls : 0, NpgsqlDbType.Integer);
        writer.Write(status == "queued" ? 0 : random.NextDouble() < 0.01 ? 2 : 1, NpgsqlDbType.Integer);
        WriteOrNull(writer, finished ? null : "bench-replica", NpgsqlDbType.Text);
        WriteOrNull(writer, finished ? (DateTimeOffset?)null : now.AddMinutes(5), NpgsqlDbType.TimestampTz);
    }

    private static void WriteOrNull<T>(NpgsqlBinaryImporter writer, T? value, NpgsqlDbType type) where T : struct
    {
        if (value is { } v)
            writer.Write(v, type);
        else
            writer.WriteNull();
    }

    private static void WriteOrNull(NpgsqlBinaryImporter writer, string? value, NpgsqlDbType type)
    {
        if (value is null)
            writer.WriteNull();
        else
            writer.Write(value, type);
    }

    private static (string Name, double Weight, double TokensPerSecond) PickModel(Random random)
    {
        var roll = random.NextDouble();
        foreach (var model in Models)
        {
            if ((roll -= model.Weight) < 0)
                return model;
        }
        return Models[^1];
    }

    private static double LogNormal(Random random, double median, double sigma) => median * Math.Exp(sigma * Normal(random));

    private static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    private static string[] Texts(Random random, int count, int minLength, int maxLength, string opening)
    {
        const string words = "the model reads a plan and checks each step against the criteria before it writes a short answer ";
        return [.. Enumerable.Range(0, count).Select(_ =>
        {
            var length = random.Next(minLength, maxLength);
            var text = new StringBuilder(opening);
            while (text.Length < length)
                text.Append(words, random.Next(words.Length / 2), words.Length / 2);
            return text.ToString(0, length);
        })];
    }
}
