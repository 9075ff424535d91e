namespace Matchlock.Cli;

/// <summary>Plain, docker-style aligned columns (no box drawing: output is often piped).</summary>
internal static class Table
{
    public static void Write(TextWriter output, IReadOnlyList<string> headers, IReadOnlyList<string[]> rows)
    {
        var widths = headers.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        output.WriteLine(Format(headers, widths));
        foreach (var row in rows)
        {
            output.WriteLine(Format(row, widths));
        }
    }

    private static string Format(IReadOnlyList<string> cells, int[] widths) =>
        string.Join("   ", cells.Select((c, i) => i == cells.Count - 1 ? c : c.PadRight(widths[i]))).TrimEnd();
}
