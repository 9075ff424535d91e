namespace Matchlock.Guest.Processes;

/// <summary>
/// The environment a command gets: what the host asked for, plus Docker's defaults for what it
/// left out (PATH, HOSTNAME, HOME from passwd, TERM=xterm with a PTY).
/// </summary>
internal static class EnvironmentBuilder
{
    /// <summary>Docker's default PATH for Linux containers.</summary>
    internal const string DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>
    /// Entries are "KEY=VALUE". A later entry for the same key replaces the earlier value but keeps
    /// its position (like `docker run -e`). Entries without '=' or with an empty key are dropped:
    /// the host resolves "-e NAME" forms before sending.
    /// </summary>
    internal static IReadOnlyList<string> Build(IEnumerable<string> requested, string home, string? hostname, bool tty)
    {
        var order = new List<string>();
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        void Set(string key, string value, bool onlyIfMissing)
        {
            if (values.ContainsKey(key))
            {
                if (!onlyIfMissing)
                {
                    values[key] = value;
                }

                return;
            }

            order.Add(key);
            values[key] = value;
        }

        foreach (var entry in requested)
        {
            var equals = entry.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                continue;
            }

            Set(entry[..equals], entry[(equals + 1)..], onlyIfMissing: false);
        }

        Set("PATH", DefaultPath, onlyIfMissing: true);
        if (!string.IsNullOrEmpty(hostname))
        {
            Set("HOSTNAME", hostname, onlyIfMissing: true);
        }

        if (tty)
        {
            Set("TERM", "xterm", onlyIfMissing: true);
        }

        Set("HOME", home, onlyIfMissing: true);
        return order.Select(key => $"{key}={values[key]}").ToArray();
    }

    /// <summary>The value of KEY in a built environment, or null.</summary>
    internal static string? Get(IReadOnlyList<string> environment, string key)
    {
        var prefix = key + "=";
        for (var i = environment.Count - 1; i >= 0; i--)
        {
            if (environment[i].StartsWith(prefix, StringComparison.Ordinal))
            {
                return environment[i][prefix.Length..];
            }
        }

        return null;
    }
}
