namespace Matchlock.Core.Sandboxes;

/// <summary>
/// Builds a command's environment: the image's Env, then <c>--env-file</c> entries, then
/// <c>-e</c> entries; a later KEY replaces an earlier one in place.
/// </summary>
public static class EnvironmentBuilder
{
    public static IReadOnlyList<string> Build(IEnumerable<string> imageEnv, IEnumerable<string> overrides, Func<string, string?> hostEnv)
    {
        var order = new List<string>();
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in imageEnv)
        {
            Set(entry);
        }

        foreach (var entry in overrides)
        {
            var eq = entry.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
            {
                // `-e KEY`: take it from the host; absent there means not set at all (Docker's rule).
                ValidateKey(entry, entry);
                if (hostEnv(entry) is { } fromHost)
                {
                    Set(entry + "=" + fromHost);
                }

                continue;
            }

            ValidateKey(entry[..eq], entry);
            Set(entry);
        }

        return [.. order.Select(k => k + "=" + values[k])];

        void Set(string entry)
        {
            var eq = entry.IndexOf('=', StringComparison.Ordinal);
            var key = eq < 0 ? entry : entry[..eq];
            var value = eq < 0 ? "" : entry[(eq + 1)..];
            if (!values.ContainsKey(key))
            {
                order.Add(key);
            }

            values[key] = value;
        }
    }

    /// <summary>Reads an env file: KEY=VALUE or KEY lines; blank lines and lines starting with # are ignored.</summary>
    public static IReadOnlyList<string> ReadEnvFile(string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"--env-file {path}: {ex.Message}", ex);
        }

        var entries = new List<string>();
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimStart();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var eq = line.IndexOf('=', StringComparison.Ordinal);
            var key = eq < 0 ? line.TrimEnd() : line[..eq];
            if (!IsValidKey(key))
            {
                throw new ArgumentException($"--env-file {path}, line {i + 1}: \"{key}\" is not a valid variable name (letters, digits and _, not starting with a digit)");
            }

            entries.Add(eq < 0 ? key : line);
        }

        return entries;
    }

    private static void ValidateKey(string key, string entry)
    {
        if (!IsValidKey(key))
        {
            throw new ArgumentException($"-e {entry}: \"{key}\" is not a valid variable name (letters, digits and _, not starting with a digit)");
        }
    }

    private static bool IsValidKey(string key) =>
        key.Length > 0 && !char.IsAsciiDigit(key[0]) && key.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');
}
