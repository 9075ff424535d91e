using System.Text;

namespace Matchlock.Core.Vm;

/// <summary>Reads the end of a log file that another process may still be writing.</summary>
internal static class TextTail
{
    /// <summary>Last <paramref name="lines"/> lines of at most the last 64 KiB; "" if the file is missing.</summary>
    public static string Read(string path, int lines, int maxBytes = 64 * 1024)
    {
        if (lines <= 0 || !File.Exists(path))
        {
            return "";
        }

        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var start = Math.Max(0, f.Length - maxBytes);
        f.Position = start;
        var buffer = new byte[f.Length - start];
        f.ReadExactly(buffer);
        var text = Encoding.UTF8.GetString(buffer).Replace("\r", "", StringComparison.Ordinal).TrimEnd('\n');
        var all = text.Split('\n');
        return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
    }
}
