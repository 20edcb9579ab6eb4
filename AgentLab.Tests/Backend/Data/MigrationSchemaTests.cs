using AgentLab.Backend.Data;
using AgentLab.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using AgentLab.Tests.AppHost;
using Npgsql;

namespace AgentLab.Tests.Backend.Data;

/// <summary>The hand-written migrations against the model: every mapped column exists with a compatible type.</summary>
public sealed class MigrationSchemaTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Migrations_AppliedToAnEmptyDatabase_CreateEveryColumnTheModelMaps()
    {
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        await using var db = database.CreateContext();

        var columns = await ColumnsAsync(database.ConnectionString);

        var missing = new List<string>();
        foreach (var entity in db.Model.GetEntityTypes())
        {
            var table = entity.GetTableName()!;
            foreach (var property in entity.GetProperties())
            {
                var column = property.GetColumnName();
                var expected = property.GetColumnType();
                if (!columns.TryGetValue((table, column), out var actual))
                    missing.Add($"{table}.{column} (missing)");
                else if (!SameType(expected, actual.Type))
                    missing.Add($"{table}.{column}: model {expected}, database {actual.Type}");
                else if (actual.Nullable != property.IsNullable)
                    missing.Add($"{table}.{column}: model nullable={property.IsNullable}, database nullable={actual.Nullable}");
            }
        }
        Assert.Empty(missing);
        Assert.Contains("20261121000000_InitialSchema", await db.Database.GetAppliedMigrationsAsync(Ct));
        Assert.Empty(await db.Database.GetPendingMigrationsAsync(Ct));
    }

    [Fact]
    public async Task Backend_FirstStartOnAnEmptyDatabase_MigratesWithoutAFailedCommandInTheLog()
    {
        var server = await SharedPostgres.GetAsync().WaitAsync(InfrastructureProcess.Bound, Ct);
        var name = "empty_" + Guid.NewGuid().ToString("N")[..16];
        await server.ExecuteAsync("postgres", $"CREATE DATABASE {name}", Ct);
        await using var database = new TestDatabase(server, name); // dropped on dispose
        var logs = new Security.CapturingLoggerProvider();
        await using var backend = new BackendFactory(new Uri("http://127.0.0.1:9/"), database.ConnectionString);
        using var factory = backend.WithWebHostBuilder(b => b.ConfigureLogging(l => l.AddProvider(logs).AddFilter<Security.CapturingLoggerProvider>(null, LogLevel.Trace)));
        using var client = factory.CreateClient();

        var deadline = DateTimeOffset.UtcNow + InfrastructureProcess.Bound;
        while (!logs.Texts().Any(t => t.Contains("Database ready:", StringComparison.Ordinal)))
        {
            Assert.True(DateTimeOffset.UtcNow < deadline, "the Backend did not report its database ready");
            await Task.Delay(50, Ct);
        }
        await using var db = database.CreateContext();

        // EF reads its history table before creating it and logs that SELECT as failed (dotnet/efcore#37328).
        Assert.DoesNotContain(logs.Texts(), t => t.Contains("Failed executing DbCommand", StringComparison.Ordinal));
        Assert.Empty(await db.Database.GetPendingMigrationsAsync(Ct));
        Assert.Contains("20261121000000_InitialSchema", await db.Database.GetAppliedMigrationsAsync(Ct));
    }

    [Fact]
    public void SnakeCase_PascalCaseNames_BecomeSnakeCaseColumns()
    {
        Assert.Equal("time_to_first_token_ms", AgentLabDb.SnakeCase("TimeToFirstTokenMs"));
        Assert.Equal("id", AgentLabDb.SnakeCase("Id"));
        Assert.Equal("lease_expires_at", AgentLabDb.SnakeCase("LeaseExpiresAt"));
    }

    private static bool SameType(string model, string database) =>
        Normalize(model) == Normalize(database);

    private static string Normalize(string type) => type.ToLowerInvariant() switch
    {
        "timestamp with time zone" => "timestamptz",
        "integer" or "int4" => "integer",
        "bigint" or "int8" => "bigint",
        var t => t,
    };

    private static async Task<Dictionary<(string Table, string Column), (string Type, bool Nullable)>> ColumnsAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = 'public'", connection);
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var columns = new Dictionary<(string, string), (string, bool)>();
        while (await reader.ReadAsync(Ct))
            columns[(reader.GetString(0), reader.GetString(1))] = (reader.GetString(2), reader.GetString(3) == "YES");
        return columns;
    }
}
