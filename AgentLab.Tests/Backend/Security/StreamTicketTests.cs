using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using AgentLab.Backend.Events;
using AgentLab.Tests.Backend.Streams;
using AgentLab.Tests.Support;
using Microsoft.AspNetCore.TestHost;
using Npgsql;

namespace AgentLab.Tests.Backend.Security;

/// <summary>
/// <c>POST /api/v1/stream-tickets</c> and <c>?ticket=</c> on the WebSocket and SSE endpoints: single-use, short-lived,
/// bound to the caller and the execution, stored hashed in PostgreSQL so any replica redeems them.
/// </summary>
public sealed class StreamTicketTests : StreamsTestBase
{
    [Fact]
    public async Task Mint_OwnExecution_Returns201WithAShortLivedTicketStoredOnlyAsAHash()
    {
        var factory = Replica();
        var id = await ExecutionAsync(factory, TestTokens.DefaultSubject);
        using var client = factory.CreateClient();

        using var response = await MintAsync(client, id);
        var body = await JsonAsync(response);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Contains("no-store", response.Headers.CacheControl?.ToString());
        var ticket = body.GetProperty("ticket").GetString()!;
        Assert.True(ticket.Length >= 22, "at least 128 bits of base64url");
        Assert.Matches("^[A-Za-z0-9_-]+$", ticket);
        Assert.Equal(30, body.GetProperty("expires_in").GetInt32());
        Assert.Equal(id, body.GetProperty("execution_id").GetGuid());
        var expiresAt = body.GetProperty("expires_at").GetDateTimeOffset();
        Assert.InRange(expiresAt, DateTimeOffset.UtcNow.AddSeconds(-5), DateTimeOffset.UtcNow.AddSeconds(60));
        var stored = await StoredTicketsAsync();
        var row = Assert.Single(stored);
        Assert.Equal(SHA256.HashData(Encoding.UTF8.GetBytes(ticket)), row.Hash);
        Assert.Equal(TestTokens.DefaultSubject, row.Subject);
        Assert.DoesNotContain(ticket, row.AllText);
    }

    [Fact]
    public async Task Mint_AnotherSubjectsOrAnUnknownExecution_Returns404_ButAnAdminMayMint()
    {
        var factory = Replica();
        var alices = await ExecutionAsync(factory, "alice");
        using var bob = factory.CreateClientFor("bob");
        using var admin = factory.CreateClientFor("root", AgentLab.ServiceDefaults.Security.AgentLabTokens.AdminRole);

        using var other = await MintAsync(bob, alices);
        using var unknown = await MintAsync(bob, Guid.CreateVersion7());
        using var byAdmin = await MintAsync(admin, alices);

        await AssertProblemAsync(other, 404, "execution_not_found");
        await AssertProblemAsync(unknown, 404, "execution_not_found");
        Assert.Equal(HttpStatusCode.Created, byAdmin.StatusCode);
        Assert.True((await StoredTicketsAsync()).Single().IsAdmin);
    }

    [Fact]
    public async Task Mint_DeletesExpiredTicketsOnTheWay()
    {
        var factory = Replica();
        var id = await ExecutionAsync(factory, TestTokens.DefaultSubject);
        await TicketAsync(factory, id);
        await Database.ExecuteAsync("UPDATE stream_tickets SET expires_at = now() - interval '1 second'", Ct);

        await TicketAsync(factory, id);

        var row = Assert.Single(await StoredTicketsAsync());
        Assert.Equal(TestTokens.DefaultSubject, row.Subject);
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("{}")]
    [InlineData("""{"execution_id": "nope"}""")]
    [InlineData("""{"execution_id": 42}""")]
    public async Task Mint_BodyWithoutAnExecutionId_Returns400(string json)
    {
        using var client = Replica().CreateClient();

        using var response = await client.PostAsync("/api/v1/stream-tickets", new StringContent(json, Encoding.UTF8, "application/json"), Ct).WaitAsync(Bound, Ct);

        var body = await AssertProblemAsync(response, 400, "validation_failed");
        Assert.True(body.GetProperty("errors").TryGetProperty("execution_id", out _));
    }

    [Fact]
    public async Task Mint_WithoutBearerToken_Returns401()
    {
        var factory = Replica();
        var id = await ExecutionAsync(factory, TestTokens.DefaultSubject);
        using var anonymous = factory.CreateAnonymousClient();

        using var response = await MintAsync(anonymous, id);

        await AssertProblemAsync(response, 401, "unauthorized");
    }

    [Fact]
    public async Task WebSocket_WithTicketAndNoAuthorizationHeader_StreamsTheEvents()
    {
        var factory = Replica();
        await using var producer = await OwnedProducerAsync(factory);
        await producer.WriteAsync(3, Ct);
        await producer.FinishAsync(Ct);
        var ticket = await TicketAsync(factory, producer.ExecutionId);

        using var socket = await factory.Server.CreateWebSocketClient()
            .ConnectAsync(new Uri(factory.Server.BaseAddress, $"{StreamClient.WebSocketPath(producer.ExecutionId)}?ticket={ticket}"), Ct).WaitAsync(Bound, Ct);
        var events = await StreamClient.ReadToCloseAsync(socket, Ct);

        Assert.Equal(StreamClient.Seqs(1, 4), events.Select(e => e.Seq));
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
    }

    [Fact]
    public async Task Sse_WithTicketAndLastEventId_StreamsTheRestWithoutAuthorizationHeader()
    {
        var factory = Replica();
        await using var producer = await OwnedProducerAsync(factory);
        await producer.WriteAsync(5, Ct);
        await producer.FinishAsync(Ct);
        var ticket = await TicketAsync(factory, producer.ExecutionId);
        using var anonymous = factory.CreateAnonymousClient();

        using var response = await anonymous.GetAsync($"{StreamClient.SsePath(producer.ExecutionId)}?ticket={ticket}&last_event_id=3",
            HttpCompletionOption.ResponseHeadersRead, Ct).WaitAsync(Bound, Ct);
        var frames = new List<StreamClient.SseFrame>();
        await foreach (var frame in StreamClient.ReadFramesAsync(await response.Content.ReadAsStreamAsync(Ct), Ct))
            frames.Add(frame);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["4", "5", "6"], frames.Where(f => f.Id is not null).Select(f => f.Id));
    }

    [Fact]
    public async Task Ticket_UsedTwice_SecondUseIs401InvalidTicketWithWhatToDo()
    {
        var factory = Replica();
        await using var producer = await OwnedProducerAsync(factory);
        await producer.WriteAsync(1, Ct);
        await producer.FinishAsync(Ct);
        var ticket = await TicketAsync(factory, producer.ExecutionId);
        using var anonymous = factory.CreateAnonymousClient();
        var path = $"{StreamClient.SsePath(producer.ExecutionId)}?ticket={ticket}";

        using (var first = await anonymous.GetAsync(path, Ct).WaitAsync(Bound, Ct))
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        using var second = await anonymous.GetAsync(path, Ct).WaitAsync(Bound, Ct);

        var body = await AssertProblemAsync(second, 401, "invalid_ticket");
        var detail = body.GetProperty("detail").GetString()!;
        Assert.Contains("POST /api/v1/stream-tickets", detail);
        Assert.Contains("last_event_id", detail);
        Assert.DoesNotContain(ticket, detail);
        Assert.Empty(await StoredTicketsAsync());
    }

    [Fact]
    public async Task Ticket_RacedByConcurrentRequests_ExactlyOneWins()
    {
        var factory = Replica();
        await using var producer = await OwnedProducerAsync(factory);
        await producer.WriteAsync(1, Ct);
        await producer.FinishAsync(Ct);
        var ticket = await TicketAsync(factory, producer.ExecutionId);
        using var anonymous = factory.CreateAnonymousClient();
        var path = $"{StreamClient.SsePath(producer.ExecutionId)}?ticket={ticket}";

        var responses = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => anonymous.GetAsync(path, Ct))).WaitAsync(Bound, Ct);

        Assert.Equal(1, responses.Count(r => r.StatusCode == HttpStatusCode.OK));
        Assert.Equal(5, responses.Count(r => r.StatusCode == HttpStatusCode.Unauthorized));
        foreach (var response in responses)
            response.Dispose();
    }

    [Fact]
    public async Task Ticket_ForAnotherExecution_Is401_AndStillWorksForItsOwn()
    {
        var factory = Replica();
        var mine = await ExecutionAsync(factory, TestTokens.DefaultSubject);
        var other = await ExecutionAsync(factory, TestTokens.DefaultSubject);
        var ticket = await TicketAsync(factory, mine);
        using var anonymous = factory.CreateAnonymousClient();

        using var wrong = await anonymous.GetAsync($"{StreamClient.SsePath(other)}?ticket={ticket}", HttpCompletionOption.ResponseHeadersRead, Ct).WaitAsync(Bound, Ct);
        using var right = await anonymous.GetAsync($"{StreamClient.SsePath(mine)}?ticket={ticket}", HttpCompletionOption.ResponseHeadersRead, Ct).WaitAsync(Bound, Ct);

        await AssertProblemAsync(wrong, 401, "invalid_ticket");
        // Authenticated: a finished execution with no events left answers 204 (EventSource stops there).
        Assert.Equal(HttpStatusCode.NoContent, right.StatusCode);
    }

    [Fact]
    public async Task Ticket_ExpiredOrUnknown_Is401InvalidTicket()
    {
        var factory = Replica();
        var id = await ExecutionAsync(factory, TestTokens.DefaultSubject);
        var ticket = await TicketAsync(factory, id);
        // Expiry is judged by the database's clock; move the row's expiry into the past rather than wait.
        await Database.ExecuteAsync("UPDATE stream_tickets SET expires_at = now() - interval '1 second'", Ct);
        using var anonymous = factory.CreateAnonymousClient();

        using var expired = await anonymous.GetAsync($"{StreamClient.SsePath(id)}?ticket={ticket}", Ct).WaitAsync(Bound, Ct);
        using var unknown = await anonymous.GetAsync($"{StreamClient.SsePath(id)}?ticket=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", Ct).WaitAsync(Bound, Ct);
        using var empty = await anonymous.GetAsync($"{StreamClient.SsePath(id)}?ticket=", Ct).WaitAsync(Bound, Ct);

        await AssertProblemAsync(expired, 401, "invalid_ticket");
        await AssertProblemAsync(unknown, 401, "invalid_ticket");
        await AssertProblemAsync(empty, 401, "invalid_ticket");
    }

    [Fact]
    public async Task Ticket_OnAnyOtherEndpoint_MeansNothingAndIsNotUsedUp()
    {
        var factory = Replica();
        var id = await ExecutionAsync(factory, TestTokens.DefaultSubject);
        var ticket = await TicketAsync(factory, id);
        using var anonymous = factory.CreateAnonymousClient();

        using var execution = await anonymous.GetAsync($"/api/v1/executions/{id}?ticket={ticket}", Ct).WaitAsync(Bound, Ct);
        using var history = await anonymous.GetAsync($"/api/v1/history?ticket={ticket}", Ct).WaitAsync(Bound, Ct);
        using var stream = await anonymous.GetAsync($"{StreamClient.SsePath(id)}?ticket={ticket}", HttpCompletionOption.ResponseHeadersRead, Ct).WaitAsync(Bound, Ct);

        await AssertProblemAsync(execution, 401, "unauthorized");
        await AssertProblemAsync(history, 401, "unauthorized");
        Assert.Equal(HttpStatusCode.NoContent, stream.StatusCode);   // authenticated by the ticket; nothing left to send
    }

    [Fact]
    public async Task Ticket_MintedOnOneReplica_IsRedeemedOnAnother()
    {
        var a = Replica();
        var b = Replica();
        await using var producer = await OwnedProducerAsync(a);
        await producer.WriteAsync(2, Ct);
        await producer.FinishAsync(Ct);
        var ticket = await TicketAsync(a, producer.ExecutionId);

        using var socket = await b.Server.CreateWebSocketClient()
            .ConnectAsync(new Uri(b.Server.BaseAddress, $"{StreamClient.WebSocketPath(producer.ExecutionId)}?ticket={ticket}"), Ct).WaitAsync(Bound, Ct);
        var events = await StreamClient.ReadToCloseAsync(socket, Ct);

        Assert.Equal(StreamClient.Seqs(1, 3), events.Select(e => e.Seq));
    }

    [Fact]
    public async Task WebSocket_RealSocketWithUsedTicket_IsRefusedWith401BeforeTheUpgrade_WhileABearerHeaderStillWorks()
    {
        var (factory, address) = KestrelReplica();
        await using var _ = factory;
        await using var producer = await OwnedProducerAsync(factory);
        await producer.WriteAsync(1, Ct);
        await producer.FinishAsync(Ct);
        var ticket = await TicketAsync(factory, producer.ExecutionId);
        var uri = KestrelBackend.WebSocketUri(address, $"{StreamClient.WebSocketPath(producer.ExecutionId)}?ticket={ticket}");
        using (var first = new ClientWebSocket())
        {
            await first.ConnectAsync(uri, Ct).WaitAsync(Bound, Ct);
            await StreamClient.ReadToCloseAsync(first, Ct);
        }

        using var reused = new ClientWebSocket();
        reused.Options.CollectHttpResponseDetails = true;
        var refused = await Assert.ThrowsAnyAsync<WebSocketException>(() => reused.ConnectAsync(uri, Ct).WaitAsync(Bound, Ct));
        using var bearer = TestTokens.Socket();
        await bearer.ConnectAsync(KestrelBackend.WebSocketUri(address, StreamClient.WebSocketPath(producer.ExecutionId)), Ct).WaitAsync(Bound, Ct);
        var events = await StreamClient.ReadToCloseAsync(bearer, Ct);

        Assert.Equal(HttpStatusCode.Unauthorized, reused.HttpStatusCode);
        Assert.DoesNotContain(ticket, refused.Message);
        Assert.Equal(StreamClient.Seqs(1, 2), events.Select(e => e.Seq));
    }

    private async Task<StreamProducer> OwnedProducerAsync(BackendFactory factory)
    {
        var producer = await ProducerAsync(Publisher(factory));
        await Database.ExecuteAsync($"UPDATE executions SET owner = '{TestTokens.DefaultSubject}' WHERE id = '{producer.ExecutionId}'", Ct);
        return producer;
    }

    private async Task<Guid> ExecutionAsync(BackendFactory factory, string owner)
    {
        var row = History.ExecutionRows.Row(AgentLab.Backend.Data.ExecutionStatus.Completed, DateTimeOffset.UtcNow);
        row.Owner = owner;
        await History.ExecutionRows.InsertAsync(Database, [row], Ct);
        return row.Id;
    }

    private static Task<HttpResponseMessage> MintAsync(HttpClient client, Guid executionId) =>
        client.PostAsJsonAsync("/api/v1/stream-tickets", new Dictionary<string, object> { ["execution_id"] = executionId }, Ct).WaitAsync(Bound, Ct);

    /// <summary>A ticket minted by the default test subject for <paramref name="executionId"/>.</summary>
    internal static async Task<string> TicketAsync(BackendFactory factory, Guid executionId)
    {
        using var client = factory.CreateClient();
        using var response = await MintAsync(client, executionId);
        var body = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"minting a ticket answered {(int)response.StatusCode}: {body}");
        return body.GetProperty("ticket").GetString()!;
    }

    private sealed record StoredTicket(byte[] Hash, string Subject, bool IsAdmin, string AllText);

    private async Task<List<StoredTicket>> StoredTicketsAsync()
    {
        await using var connection = new NpgsqlConnection(Database.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand("SELECT hash, subject, is_admin, stream_tickets::text FROM stream_tickets", connection);
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var rows = new List<StoredTicket>();
        while (await reader.ReadAsync(Ct))
            rows.Add(new StoredTicket((byte[])reader[0], reader.GetString(1), reader.GetBoolean(2), reader.GetString(3)));
        return rows;
    }
}
