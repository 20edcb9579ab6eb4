#:sdk Microsoft.NET.Sdk
#:project ../../AgentLab.Backend/AgentLab.Backend.csproj
#:property PublishAot=false
#:property TreatWarningsAsErrors=true

// Retention at scale (run through run.sh, which starts a throw-away cluster): seeds executions spread over 90 days
// (98% finished) with their events, prints the EXPLAIN plans of the retention scans, then times real passes of
// RetentionJob wired as the Backend wires it.
using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using AgentLab.Backend.Data;
using AgentLab.Backend.Data.Retention;
using Microsoft.EntityFrameworkCore;
using Npgsql;

var connectionString = args[0];
var executions = int.Parse(args[1]);
var eventsPer = int.Parse(args[2]);

var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
{
    ["ConnectionStrings:agentlabdb"] = connectionString,
    ["Retention:MaxAgeDays"] = "30",
    ["Retention:MaxExecutions"] = "100000",
    ["Retention:CompactEventsAfterMinutes"] = "60",
}).Build();
await using var services = new ServiceCollection()
    .AddSingleton<IConfiguration>(configuration)
    .AddSingleton(TimeProvider.System)
    .AddLogging(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning)
        .AddFilter("Microsoft.EntityFrameworkCore", LogLevel.None))   // EF logs probing the history table before it exists as an error
    .AddAgentLabDatabase()
    .AddRetention()
    .BuildServiceProvider();

await using (var scope = services.CreateAsyncScope())
{
    var db = scope.ServiceProvider.GetRequiredService<AgentLabDb>();
    db.Database.SetCommandTimeout(TimeSpan.FromMinutes(30));
    await db.Database.MigrateAsync();
    var clock = Stopwatch.StartNew();
    // Created uniformly over 90 days; 2% still running, at every age (they must survive); events: queued, started,
    // tokens, completed.
    await ExecuteAsync(db, $$"""
        INSERT INTO executions (id, execution_type, mode, model, model_server, status, request, request_hash, created_at,
                                started_at, completed_at, duration_ms, attempt, lease_owner, lease_expires_at)
        SELECT gen_random_uuid(), 'simple', 'async', 'mistral:7b', 'simulator',
               CASE WHEN i % 50 = 0 THEN 'running' ELSE 'completed' END, '{"prompt":"p"}', 'h',
               now() - (i * interval '90 days' / {{executions}}),
               now() - (i * interval '90 days' / {{executions}}),
               CASE WHEN i % 50 = 0 THEN NULL ELSE now() - (i * interval '90 days' / {{executions}}) + interval '5 seconds' END,
               5000, 1,
               CASE WHEN i % 50 = 0 THEN 'replica-a' END,
               CASE WHEN i % 50 = 0 THEN now() + interval '1 minute' END
        FROM generate_series(1, {{executions}}) AS i;
        INSERT INTO execution_events (execution_id, seq, type, node, data, ts)
        SELECT e.id, s, CASE WHEN s = 1 THEN 'execution_queued' WHEN s = 2 THEN 'execution_started'
                             WHEN s = {{eventsPer}} THEN 'execution_completed' ELSE 'token' END,
               NULL, CASE WHEN s BETWEEN 3 AND {{eventsPer - 1}} THEN '{"text":"chunk of text "}'::jsonb ELSE '{}'::jsonb END,
               e.created_at
        FROM executions e, generate_series(1, {{eventsPer}}) AS s;
        ANALYZE;
        """);
    Console.WriteLine($"Seeded {executions:N0} executions and {executions * (long)eventsPer:N0} events in {clock.Elapsed.TotalSeconds:0.0} s.");

    var finished = "status IN ('completed', 'failed', 'cancelled', 'timed_out')";
    await ExplainAsync(db, "age scan (one batch)", $"SELECT id FROM executions WHERE created_at < now() - interval '30 days' AND {finished} ORDER BY created_at, id LIMIT 500 FOR UPDATE SKIP LOCKED");
    await ExplainAsync(db, "count for the cap", "SELECT count(*) FROM executions");
    await ExplainAsync(db, "cap scan (one batch)", $"SELECT id FROM executions WHERE {finished} ORDER BY created_at, id LIMIT 500 FOR UPDATE SKIP LOCKED");
    await ExplainAsync(db, "compaction scan (one batch)", $"SELECT id FROM executions WHERE {finished} AND completed_at < now() - interval '60 minutes' AND events_compacted_at IS NULL ORDER BY completed_at LIMIT 500 FOR UPDATE SKIP LOCKED");
}

var job = services.GetRequiredService<RetentionJob>();
for (var pass = 1; pass <= 3; pass++)
{
    var result = await job.RunOnceAsync(CancellationToken.None);
    Console.WriteLine($"pass {pass}: {result.Status}, deleted {result.DeletedByAge:N0} by age and {result.DeletedByCount:N0} by count " +
        $"in {result.DeleteStatements:N0} DELETEs, compacted {result.ExecutionsCompacted:N0} executions ({result.TokenEventsMerged:N0} token events merged) " +
        $"in {result.Elapsed.TotalSeconds:0.0} s{(result.Error is null ? "" : ": " + result.Error)}");
    if (pass == 1)
    {
        Console.WriteLine($"         {(result.DeletedByAge + result.DeletedByCount) * (1 + eventsPer):N0} rows (executions + events) deleted in all");
    }
}

static async Task ExecuteAsync(AgentLabDb db, string sql)
{
    await using var connection = new NpgsqlConnection(db.Database.GetConnectionString());
    await connection.OpenAsync();
    await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 3600 };
    await command.ExecuteNonQueryAsync();
}

static async Task ExplainAsync(AgentLabDb db, string title, string sql)
{
    await using var connection = new NpgsqlConnection(db.Database.GetConnectionString());
    await connection.OpenAsync();
    await using var transaction = await connection.BeginTransactionAsync();
    await using var command = new NpgsqlCommand("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, connection, transaction);
    Console.WriteLine($"-- {title}");
    await using var reader = await command.ExecuteReaderAsync();
    while (await reader.ReadAsync())
        Console.WriteLine("   " + reader.GetString(0));
}
