namespace Matchlock.Integration.Tests.Registry;

/// <summary>The pull output contract (docker-like) and the one-line failure contract.</summary>
internal static class PullAssert
{
    /// <summary>
    /// Exit 0; stdout ends with <c>Digest: …</c>, <c>Status: Downloaded newer image for NAME</c>
    /// (or <c>Image is up to date for NAME</c>), then <c>NAME</c>.
    /// </summary>
    public static void Pulled(CliResult r, string name, string digest, bool downloaded = true)
    {
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(lines.Length >= 3, "pull stdout should end with Digest/Status/NAME lines: " + r);
        Assert.Equal("Digest: " + digest, lines[^3]);
        Assert.Equal((downloaded ? "Status: Downloaded newer image for " : "Status: Image is up to date for ") + name, lines[^2]);
        Assert.Equal(name, lines[^1]);
    }

    /// <summary>
    /// Exit 125 and a last stderr line <c>matchlock: …</c> that names <paramref name="reference"/>
    /// and contains one of <paramref name="causes"/> (case-insensitive). Returns that line.
    /// </summary>
    public static string Failed(CliResult r, string reference, params string[] causes)
    {
        Assert.True(r.ExitCode == 125, "expected exit 125: " + r);
        var last = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "";
        last = last[(last.LastIndexOf('\r') + 1)..]; // progress may redraw a line with CR
        Assert.True(last.StartsWith("matchlock: ", StringComparison.Ordinal), "the last stderr line should be the error: " + r);
        Assert.True(last.Contains(reference, StringComparison.Ordinal), $"the error should name {reference}: {last}");
        Assert.True(causes.Any(c => last.Contains(c, StringComparison.OrdinalIgnoreCase)),
            $"the error should give the cause (one of: {string.Join(" | ", causes)}): {last}");
        return last;
    }
}
