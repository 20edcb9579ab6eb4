using Npgsql;

namespace AgentLab.Bench;

/// <summary>
/// CPU time of a local PostgreSQL server: the postmaster and its children (one per connection), read from /proc;
/// null where that cannot be read (another OS, a remote server, no permission).
/// </summary>
internal sealed class PostgresCpu(int postmaster)
{
    public static async Task<PostgresCpu?> FindAsync(string connectionString, CancellationToken ct)
    {
        try
        {
            await using var db = new NpgsqlConnection(connectionString);
            await db.OpenAsync(ct);
            await using var command = new NpgsqlCommand("SELECT current_setting('data_directory')", db);
            var folder = (string)(await command.ExecuteScalarAsync(ct))!;
            var pid = int.Parse(File.ReadLines(Path.Combine(folder, "postmaster.pid")).First(), System.Globalization.CultureInfo.InvariantCulture);
            var cpu = new PostgresCpu(pid);
            return cpu.Total() > TimeSpan.Zero ? cpu : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or PostgresException or FormatException)
        {
            return null;
        }
    }

    /// <summary>User + system time of the postmaster, its live children, and its children that have exited.</summary>
    public TimeSpan Total()
    {
        double ticks = 0;
        foreach (var folder in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(folder), out var pid))
                continue;
            string[] fields;
            try
            {
                // After the ")" that closes the command name: state is field 0, ppid 1, utime 11, stime 12, cutime 13, cstime 14.
                var stat = File.ReadAllText(Path.Combine(folder, "stat"));
                fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            }
            catch (IOException)
            {
                continue;   // exited meanwhile
            }
            if (pid == postmaster)
                ticks += Field(fields, 11) + Field(fields, 12) + Field(fields, 13) + Field(fields, 14);
            else if (Field(fields, 1) == postmaster)
                ticks += Field(fields, 11) + Field(fields, 12);
        }
        // Linux reports in clock ticks of USER_HZ, 100 per second on every common configuration.
        return TimeSpan.FromSeconds(ticks / 100);
    }

    private static long Field(string[] fields, int index) => long.Parse(fields[index], System.Globalization.CultureInfo.InvariantCulture);
}
