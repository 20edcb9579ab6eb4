using System.Net.Sockets;
using System.Text.Json;
using AgentLab.Backend.Data;
using AgentLab.Backend.Errors;
using AgentLab.Backend.Lab;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AgentLab.Tests.Backend.DatabaseDown;

/// <summary>
/// <see cref="DatabaseHealth"/>'s bookkeeping and <see cref="BackendExceptionHandler"/>'s mapping of database failures,
/// without a server: which failures mark the database down, what fails fast, and what a client is told.
/// </summary>
public sealed class DatabaseHealthTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void ThrowIfUnavailable_MigrationStepNotDone_ThrowsNamingTheStep()
    {
        var health = CreateHealth();

        var refused = Assert.Throws<DatabaseUnavailableException>(health.ThrowIfUnavailable);

        Assert.Contains("migration step: pending", refused.Reason, StringComparison.Ordinal);
        Assert.False(health.IsAvailable);
    }

    [Fact]
    public void ReportFailure_OneFailedCommand_OnlySuspectSoARetryIsNotRefused()
    {
        var health = CreateHealth();

        health.ReportFailure(Refused());

        Assert.Null(health.CurrentOutage);
        health.ThrowIfDown();
    }

    [Fact]
    public async Task ProbeAsync_ServerRefuses_DownUntilASuccessIsReported()
    {
        var health = CreateHealth();

        var probe = await health.ProbeAsync(Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);
        var outage = health.CurrentOutage;
        var refused = Assert.Throws<DatabaseUnavailableException>(health.ThrowIfDown);
        var waiting = health.WhenAvailableAsync(Ct);
        var waitedBeforeSuccess = waiting.IsCompleted;
        health.ReportSuccess();

        Assert.False(probe.Answered);
        Assert.NotNull(outage);
        Assert.Contains("ConnectionRefused", outage.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", outage.Reason, StringComparison.Ordinal);
        Assert.Equal(outage.Reason, refused.Reason);
        Assert.Equal(outage.Since, refused.Since);
        Assert.True(DatabaseErrors.IsUnavailable(refused));
        Assert.StartsWith("ConnectionRefused", DatabaseErrors.Describe(refused), StringComparison.Ordinal);
        Assert.False(waitedBeforeSuccess);
        Assert.Null(health.CurrentOutage);
        await waiting.WaitAsync(TimeSpan.FromSeconds(5), Ct);
    }

    [Fact]
    public async Task ProbeAsync_FailsAgain_KeepsWhenTheOutageBegan()
    {
        var health = CreateHealth();

        await health.ProbeAsync(Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);
        var since = health.CurrentOutage!.Since;
        await health.ProbeAsync(Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);

        Assert.Equal(since, health.CurrentOutage!.Since);
    }

    [Fact]
    public async Task ThrowIfUnavailable_SchemaNotReadyAndServerDown_NamesTheOutageFirst()
    {
        var health = CreateHealth();
        await health.ProbeAsync(Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);

        var refused = Assert.Throws<DatabaseUnavailableException>(health.ThrowIfUnavailable);

        Assert.Contains("ConnectionRefused", refused.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void ReportFailure_QueryError_DoesNotMarkDown()
    {
        var health = CreateHealth();

        health.ReportFailure(new PostgresException("relation \"nope\" does not exist", "ERROR", "ERROR", PostgresErrorCodes.UndefinedTable));

        Assert.Null(health.CurrentOutage);
    }

    [Fact]
    public async Task ExceptionHandler_DriverCannotConnect_503DbUnavailableWithRetryAfter()
    {
        var health = CreateHealth();
        var context = CreateContext();

        var handled = await CreateHandler(health).TryHandleAsync(context, Refused(), Ct);

        Assert.True(handled);
        Assert.Equal(StatusCodes.Status503ServiceUnavailable, context.Response.StatusCode);
        Assert.Equal("5", context.Response.Headers.RetryAfter.ToString());
        var body = Body(context);
        Assert.Equal("db_unavailable", body.GetProperty("code").GetString());
        var detail = body.GetProperty("detail").GetString()!;
        Assert.Contains("PostgreSQL is unreachable (ConnectionRefused", detail, StringComparison.Ordinal);
        Assert.Contains("ConnectionStrings:agentlabdb", detail, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExceptionHandler_FailFastRefusal_503DbUnavailableWithTheReason()
    {
        var health = CreateHealth();
        var context = CreateContext();

        await CreateHandler(health).TryHandleAsync(context, new DatabaseUnavailableException("The database schema is not ready."), Ct);

        Assert.Equal(StatusCodes.Status503ServiceUnavailable, context.Response.StatusCode);
        Assert.Equal("5", context.Response.Headers.RetryAfter.ToString());
        Assert.Equal("db_unavailable", Body(context).GetProperty("code").GetString());
        Assert.Contains("The database schema is not ready.", Body(context).GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExceptionHandler_SocketErrorOfAnotherClient_NotTakenForADatabaseOutage()
    {
        var health = CreateHealth();
        var context = CreateContext();

        await CreateHandler(health).TryHandleAsync(context,
            new HttpRequestException("refused", new SocketException((int)SocketError.ConnectionRefused)), Ct);

        Assert.Equal(StatusCodes.Status500InternalServerError, context.Response.StatusCode);
        Assert.Null(health.CurrentOutage);
    }

    private static NpgsqlException Refused() =>
        new("Failed to connect to 127.0.0.1:1", new SocketException((int)SocketError.ConnectionRefused));

    private static DatabaseHealth CreateHealth()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["ConnectionStrings:agentlabdb"] = "Host=127.0.0.1;Port=1;Database=nowhere;Username=u;Password=secret" })
            .Build();
        return new DatabaseHealth(new DatabaseState(), Options.Create(new DatabaseOptions()), configuration, TimeProvider.System,
            NullLogger<DatabaseHealth>.Instance);
    }

    private static BackendExceptionHandler CreateHandler(DatabaseHealth health) =>
        new(Options.Create(new LabServiceOptions()), Options.Create(new DatabaseOptions()), health, NullLogger<BackendExceptionHandler>.Instance);

    private static DefaultHttpContext CreateContext()
    {
        var services = new ServiceCollection().AddLogging().AddProblemDetails().BuildServiceProvider();
        var context = new DefaultHttpContext { RequestServices = services };
        context.Request.Method = "POST";
        context.Request.Path = "/api/v1/execute";
        context.Response.Body = new MemoryStream();
        return context;
    }

    private static JsonElement Body(DefaultHttpContext context)
    {
        context.Response.Body.Position = 0;
        return JsonDocument.Parse(context.Response.Body).RootElement;
    }
}
