using System.Text;
using Matchlock.Core.Images;

namespace Matchlock.Core.Sandboxes;

/// <summary>
/// Turns an image's ENTRYPOINT/CMD and the user's words into the argv the guest runs
/// (docs/COMPATIBILITY.md "CLI": ENTRYPOINT + (user args, or CMD if none), run via <c>sh -c</c> of the
/// shell-quoted words).
/// </summary>
public static class CommandComposer
{
    /// <param name="entrypointOverride">null: the image's; "": none; otherwise one program (like <c>docker run --entrypoint</c>).</param>
    /// <param name="userArgs">Words after the image; empty means the image's CMD.</param>
    public static IReadOnlyList<string> Compose(ImageConfig image, string? entrypointOverride, IReadOnlyList<string> userArgs)
    {
        IReadOnlyList<string> entrypoint = entrypointOverride switch
        {
            null => image.Entrypoint,
            "" => [],
            _ => [entrypointOverride],
        };

        // As with Docker, overriding the entrypoint also drops the image's CMD.
        var rest = userArgs.Count > 0 ? userArgs : entrypointOverride is null ? image.Cmd : [];
        var words = entrypoint.Concat(rest).ToList();
        if (words.Count == 0)
        {
            throw new ArgumentException("no command to run: the image has no ENTRYPOINT or CMD; give one after the image flags, e.g. `matchlock run --image busybox -- echo hi`");
        }

        return ["/bin/sh", "-c", string.Join(' ', words.Select(ShellQuote))];
    }

    /// <summary>POSIX shell quoting: words made only of safe characters stay bare, others get single quotes.</summary>
    public static string ShellQuote(string word)
    {
        if (word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || "@%+=:,./_-".Contains(c, StringComparison.Ordinal)))
        {
            return word;
        }

        var sb = new StringBuilder("'");
        foreach (var c in word)
        {
            sb.Append(c == '\'' ? "'\\''" : c.ToString());
        }

        return sb.Append('\'').ToString();
    }
}
