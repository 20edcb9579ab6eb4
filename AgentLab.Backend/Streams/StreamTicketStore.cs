using System.Buffers.Text;
using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Text;
using AgentLab.Backend.Data;
using AgentLab.Backend.Security;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Streams;

/// <summary>Stream tickets (section <c>Streams</c>, shared with <see cref="StreamOptions"/>).</summary>
public sealed class StreamTicketOptions
{
    public const string Section = StreamOptions.Section;

    /// <summary>How long a ticket from <c>POST /api/v1/stream-tickets</c> may be redeemed; it is single-use either way.</summary>
    [Range(1, 600)]
    public int TicketSeconds { get; set; } = 30;
}

/// <summary>
/// A stored ticket (table <c>stream_tickets</c>): only the SHA-256 of the ticket is kept, with who may use it, for
/// which execution, until when. A row is deleted by the one request that redeems it.
/// </summary>
public sealed class StreamTicketRecord
{
    /// <summary>SHA-256 of the ticket string; the ticket itself is never stored.</summary>
    public byte[] Hash { get; set; } = [];

    /// <summary>The token subject the ticket speaks for.</summary>
    public string Subject { get; set; } = "";

    /// <summary>Whether that token held the admin role when the ticket was minted.</summary>
    public bool IsAdmin { get; set; }

    public Guid ExecutionId { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }
}

/// <summary>A ticket just minted: the secret (handed out once, never stored) and when it lapses.</summary>
public sealed record IssuedStreamTicket(string Ticket, DateTimeOffset ExpiresAt);

/// <summary>
/// Mints and redeems stream tickets in PostgreSQL, so a ticket minted on one replica works on any other. Both
/// operations are one statement each, timed by the database's clock (replicas' clocks do not matter):
/// minting inserts the hash (and deletes a few expired rows on the way, so the table stays small without a job);
/// redeeming is <c>DELETE ... RETURNING</c>, so of two requests racing with the same ticket exactly one wins.
/// </summary>
public sealed class StreamTicketStore(AgentLabDb db, IOptions<StreamTicketOptions> options)
{
    /// <summary>Random bytes per ticket (256 bits; base64url gives 43 characters).</summary>
    public const int TicketBytes = 32;

    /// <summary>Longer query values cannot be tickets; they are refused without hashing.</summary>
    public const int MaxTicketLength = 128;

    /// <summary>Expired rows deleted per mint: enough to keep up with any minting rate, too few to ever be slow.</summary>
    private const int CleanupBatch = 100;

    /// <summary>The owner of the execution, or null when there is none.</summary>
    public Task<string?> FindOwnerAsync(Guid executionId, CancellationToken ct) =>
        db.Executions.AsNoTracking().Where(e => e.Id == executionId).Select(e => e.Owner).FirstOrDefaultAsync(ct);

    /// <summary>A new ticket for <paramref name="caller"/> to stream <paramref name="executionId"/>.</summary>
    public async Task<IssuedStreamTicket> IssueAsync(Caller caller, Guid executionId, CancellationToken ct)
    {
        var ticket = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(TicketBytes));
        var hash = Hash(ticket);
        var seconds = options.Value.TicketSeconds;
        // Retried by the execution strategy after a lost commit: the same hash then updates its own row.
        var rows = await db.StreamTickets.FromSql($"""
            WITH expired AS (
                DELETE FROM stream_tickets WHERE hash IN (
                    SELECT hash FROM stream_tickets WHERE expires_at < now()
                    ORDER BY expires_at LIMIT {CleanupBatch}
                    FOR UPDATE SKIP LOCKED))
            INSERT INTO stream_tickets (hash, subject, is_admin, execution_id, expires_at)
            VALUES ({hash}, {caller.Subject}, {caller.IsAdmin}, {executionId}, now() + {seconds} * interval '1 second')
            ON CONFLICT (hash) DO UPDATE SET expires_at = EXCLUDED.expires_at
            RETURNING *
            """).AsNoTracking().ToListAsync(ct);
        return new IssuedStreamTicket(ticket, rows.Single().ExpiresAt);
    }

    /// <summary>
    /// Uses up <paramref name="ticket"/> for <paramref name="executionId"/>: the holder it was minted for, or null when
    /// it is unknown, expired, already used, or for another execution (a ticket for another execution stays usable there).
    /// </summary>
    public async Task<StreamTicketRecord?> RedeemAsync(string ticket, Guid executionId, CancellationToken ct)
    {
        if (ticket.Length is 0 or > MaxTicketLength)
            return null;
        var hash = Hash(ticket);
        var rows = await db.StreamTickets.FromSql($"""
            DELETE FROM stream_tickets
            WHERE hash = {hash} AND execution_id = {executionId} AND expires_at > now()
            RETURNING *
            """).AsNoTracking().ToListAsync(ct);
        return rows.SingleOrDefault();
    }

    internal static byte[] Hash(string ticket) => SHA256.HashData(Encoding.UTF8.GetBytes(ticket));
}
