namespace Matchlock.Cli.Commands;

/// <summary>
/// <c>--secret-file NAME=PATH@hosts</c> and <c>--secret-placeholder NAME=TEXT</c> (the original's
/// 0.2.8; docs/COMPATIBILITY.md "Later releases", docs/NETWORK.md). A secret file's value is read here,
/// in the process that holds the proxy, and never appears in argv, state or messages; one
/// trailing newline is dropped, as files written by <c>echo</c> end with one.
/// </summary>
internal static class SecretFlags
{
    /// <summary>The <c>--secret-file</c> flags as <c>NAME=VALUE@hosts</c> specs.</summary>
    /// <exception cref="ArgumentException">Malformed, or the file cannot be read (the message names the file, never its content).</exception>
    public static IEnumerable<string> ReadFiles(IEnumerable<string> flags)
    {
        foreach (var flag in flags)
        {
            var eq = flag.IndexOf('=', StringComparison.Ordinal);
            var at = flag.LastIndexOf('@');
            if (eq <= 0 || at < eq + 2 || at == flag.Length - 1)
            {
                throw new ArgumentException($"--secret-file \"{flag}\" must be NAME=PATH@host1,host2");
            }

            var name = flag[..eq];
            var path = flag[(eq + 1)..at];
            string value;
            try
            {
                value = File.ReadAllText(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new ArgumentException($"--secret-file {name}: cannot read {path}: {ex.Message}", ex);
            }

            value = value.EndsWith("\r\n", StringComparison.Ordinal) ? value[..^2] : value.EndsWith('\n') ? value[..^1] : value;
            if (value.Length == 0)
            {
                throw new ArgumentException($"--secret-file {name}: {path} is empty");
            }

            yield return $"{name}={value}@{flag[(at + 1)..]}";
        }
    }

    /// <summary>The <c>--secret-placeholder</c> flags by secret name (checked against the secrets by the network spec).</summary>
    public static IReadOnlyDictionary<string, string> Placeholders(IEnumerable<string> flags)
    {
        var placeholders = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var flag in flags)
        {
            var eq = flag.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || eq == flag.Length - 1)
            {
                throw new ArgumentException($"--secret-placeholder \"{flag}\" must be NAME=TEXT");
            }

            placeholders[flag[..eq]] = flag[(eq + 1)..];
        }

        return placeholders;
    }
}
