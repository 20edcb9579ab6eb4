using AgentLab.Backend.History;

namespace AgentLab.Tests.Backend.History;

public sealed class HistoryCursorTests
{
    [Fact]
    public void Cursor_EncodedThenDecoded_SamePositionToTheMicrosecond()
    {
        var position = new HistoryCursor(new DateTimeOffset(2026, 11, 21, 10, 11, 12, TimeSpan.Zero).AddTicks(1_234_560), Guid.CreateVersion7());

        var token = position.Encode();

        Assert.True(HistoryCursor.TryDecode(token, out var decoded));
        Assert.Equal(position, decoded);
        Assert.Matches("^[A-Za-z0-9_-]+$", token);
    }

    [Fact]
    public void Cursor_AnyCharacterChanged_Rejected()
    {
        var token = new HistoryCursor(DateTimeOffset.UnixEpoch.AddDays(20_000), Guid.CreateVersion7()).Encode();

        var accepted = new List<string>();
        for (var i = 0; i < token.Length; i++)
        {
            foreach (var replacement in "AQgw_-")
            {
                if (replacement == token[i])
                    continue;
                var changed = token[..i] + replacement + token[(i + 1)..];
                if (HistoryCursor.TryDecode(changed, out _))
                    accepted.Add(changed);
            }
        }

        // The last character carries 2 unused bits in base64url; any change that reaches the payload is caught.
        Assert.All(accepted, a => Assert.Equal(token[..^1], a[..^1]));
        Assert.True(accepted.Count <= 3, string.Join(", ", accepted));
    }

    [Theory]
    [InlineData("")]
    [InlineData("====")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("eyJjcmVhdGVkX2F0IjoiMjAyNiJ9")]
    public void Cursor_NotMadeByEncode_Rejected(string token)
    {
        Assert.False(HistoryCursor.TryDecode(token, out _));
    }
}
