using System.Text;

namespace Matchlock.Guest.Init;

/// <summary>
/// The <c>matchlock.*</c> keys of /proc/cmdline (CONTRACTS.md: nothing else is ours, and nothing
/// secret is ever there). Quoting follows the kernel's own parser (lib/cmdline.c next_arg):
/// double quotes group spaces and are removed.
/// </summary>
internal static class KernelCommandLine
{
    internal const string Prefix = "matchlock.";

    /// <summary>Keys without the "matchlock." prefix; a bare key has the value "".</summary>
    internal static IReadOnlyDictionary<string, string> Parse(string commandLine)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var word in Split(commandLine))
        {
            var equals = word.IndexOf('=', StringComparison.Ordinal);
            var key = equals < 0 ? word : word[..equals];
            if (!key.StartsWith(Prefix, StringComparison.Ordinal) || key.Length == Prefix.Length)
            {
                continue;
            }

            result[key[Prefix.Length..]] = equals < 0 ? "" : word[(equals + 1)..];
        }

        return result;
    }

    internal static IReadOnlyDictionary<string, string> ReadCurrent() =>
        Parse(File.Exists("/proc/cmdline") ? File.ReadAllText("/proc/cmdline") : "");

    private static IEnumerable<string> Split(string text)
    {
        var current = new StringBuilder();
        var inQuotes = false;
        var any = false;
        foreach (var c in text)
        {
            if (c == '"')
            {
                inQuotes = !inQuotes;
                any = true;
                continue;
            }

            if (char.IsWhiteSpace(c) && !inQuotes)
            {
                if (any)
                {
                    yield return current.ToString();
                    current.Clear();
                    any = false;
                }

                continue;
            }

            current.Append(c);
            any = true;
        }

        if (any)
        {
            yield return current.ToString();
        }
    }
}
