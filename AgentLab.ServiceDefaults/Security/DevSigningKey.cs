namespace AgentLab.ServiceDefaults.Security;

/// <summary>
/// The development signing key: one file, <c>.agentlab/dev-signing-key</c> at the repository root (git-ignored),
/// shared by the AppHost (which injects it into the Backend and prints a token), a Backend started alone in
/// Development, and <c>dotnet run --project AgentLab.Backend -- token</c>. Created on first use, readable by its
/// owner only. Never used outside Development.
/// </summary>
public static class DevSigningKey
{
    public const string RelativePath = ".agentlab/dev-signing-key";

    /// <summary>
    /// The key file for a process started in <paramref name="startDirectory"/>: under the first parent that holds
    /// <c>AgentLab.sln</c>, else under the user's home folder.
    /// </summary>
    public static string DefaultPath(string startDirectory)
    {
        for (var dir = new DirectoryInfo(startDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AgentLab.sln")))
                return Path.Combine(dir.FullName, RelativePath);
        }
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), RelativePath);
    }

    /// <summary>Reads the key at <paramref name="path"/>, creating it (and its folder) first when it does not exist.</summary>
    public static byte[] LoadOrCreate(string path)
    {
        if (File.Exists(path))
            return AgentLabTokens.ParseKey(File.ReadAllText(path), path);

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var key = AgentLabTokens.NewKey();
        var temporary = $"{path}.{Environment.ProcessId}.tmp";
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var writer = new StreamWriter(temporary, System.Text.Encoding.ASCII, options))
            writer.Write(AgentLabTokens.Encode(key));
        try
        {
            // Two processes starting at once: the first one's key wins, the other reads it.
            File.Move(temporary, path, overwrite: false);
            return key;
        }
        catch (IOException) when (File.Exists(path))
        {
            File.Delete(temporary);
            return AgentLabTokens.ParseKey(File.ReadAllText(path), path);
        }
    }
}
