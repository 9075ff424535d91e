namespace Matchlock.Core.Vfs.Hooks;

/// <summary>
/// Path globs of VFS hook rules, matched against the full guest path (docs/VFS.md "Hooks and
/// events"), as Go's <c>filepath.Match</c> (the original's) plus <c>**</c>: <c>*</c> is any run of
/// characters but <c>/</c>, <c>?</c> one character but <c>/</c>, <c>[abc]</c>, <c>[a-z]</c> and
/// <c>[^…]</c>/<c>[!…]</c> classes, <c>\x</c> a literal x, and <c>**</c> any run including
/// <c>/</c> (so <c>/workspace/**</c> is everything below /workspace). Case-sensitive, as the
/// guest's paths are.
/// </summary>
public static class VfsPathGlob
{
    /// <summary>Why a pattern cannot be used, or null when it can.</summary>
    public static string? Problem(string pattern)
    {
        if (pattern.Length > 1024)
        {
            return "is longer than 1024 characters";
        }

        if (!pattern.StartsWith('/') && !pattern.StartsWith('*'))
        {
            return "must be an absolute guest path glob, such as /workspace/*.txt or /workspace/**";
        }

        for (var i = 0; i < pattern.Length; i++)
        {
            switch (pattern[i])
            {
                case '\\':
                    if (++i >= pattern.Length)
                    {
                        return "ends with a lone backslash";
                    }

                    break;
                case '[':
                    var end = ClassEnd(pattern, i);
                    if (end < 0)
                    {
                        return "has an unclosed [ class";
                    }

                    i = end;
                    break;
            }
        }

        return null;
    }

    /// <summary>Whether <paramref name="path"/> matches the whole <paramref name="pattern"/>.</summary>
    /// <remarks>
    /// Each (pattern position, path position) pair is tried at most once (failures are remembered),
    /// so any pattern costs at most |pattern| × |path| steps: no star-heavy rule can stall the VFS.
    /// </remarks>
    public static bool IsMatch(string pattern, string path) =>
        new Matcher(pattern, path, prefixOnly: false).Match(0, 0);

    /// <summary>
    /// Whether some path below <paramref name="directory"/> (<c>directory/…</c>) could match
    /// <paramref name="pattern"/>: what moving or renaming that directory would take out of the
    /// pattern's reach. Conservative: true when the pattern can still match after the prefix.
    /// </summary>
    public static bool MayMatchBelow(string pattern, string directory) =>
        new Matcher(pattern, directory.TrimEnd('/') + "/", prefixOnly: true).Match(0, 0);

    /// <param name="prefixOnly">Succeed as soon as all of <paramref name="path"/> is consumed (it is a prefix of a match).</param>
    private sealed class Matcher(string pattern, string path, bool prefixOnly)
    {
        private readonly System.Collections.BitArray _failed = new((pattern.Length + 1) * (path.Length + 1));

        public bool Match(int p, int s)
        {
            var key = (p * (path.Length + 1)) + s;
            if (_failed[key])
            {
                return false;
            }

            var matched = Step(p, s);
            if (!matched)
            {
                _failed[key] = true;
            }

            return matched;
        }

        /// <summary>Literals, ? and classes in a loop (no recursion per character); recursion only at stars.</summary>
        private bool Step(int p, int s)
        {
            while (p < pattern.Length)
            {
                if (prefixOnly && s == path.Length)
                {
                    return true; // the rest of the pattern can match some suffix
                }

                switch (pattern[p])
                {
                    case '*':
                        var crossesSlash = p + 1 < pattern.Length && pattern[p + 1] == '*';
                        var rest = p + (crossesSlash ? 2 : 1);
                        for (var i = s; i <= path.Length; i++)
                        {
                            if (Match(rest, i))
                            {
                                return true;
                            }

                            if (i < path.Length && path[i] == '/' && !crossesSlash)
                            {
                                return false;
                            }
                        }

                        return false;
                    case '?':
                        if (s >= path.Length || path[s] == '/')
                        {
                            return false;
                        }

                        p++;
                        break;
                    case '[':
                        var end = ClassEnd(pattern, p);
                        if (end < 0 || s >= path.Length || path[s] == '/' || !InClass(pattern.AsSpan(p + 1, end - p - 1), path[s]))
                        {
                            return false;
                        }

                        p = end + 1;
                        break;
                    default:
                        var literal = pattern[p];
                        var width = 1;
                        if (literal == '\\' && p + 1 < pattern.Length)
                        {
                            literal = pattern[p + 1];
                            width = 2;
                        }

                        if (s >= path.Length || path[s] != literal)
                        {
                            return false;
                        }

                        p += width;
                        break;
                }

                s++;
            }

            return s == path.Length;
        }
    }

    /// <summary>The index of the <c>]</c> closing the class opened at <paramref name="open"/>, or -1.</summary>
    private static int ClassEnd(ReadOnlySpan<char> pattern, int open)
    {
        var i = open + 1;
        if (i < pattern.Length && pattern[i] is '^' or '!')
        {
            i++;
        }

        if (i < pattern.Length && pattern[i] == ']')
        {
            i++; // a leading ] is a member
        }

        for (; i < pattern.Length; i++)
        {
            if (pattern[i] == '\\')
            {
                i++;
            }
            else if (pattern[i] == ']')
            {
                return i;
            }
        }

        return -1;
    }

    private static bool InClass(ReadOnlySpan<char> body, char c)
    {
        var negate = body.Length > 0 && body[0] is '^' or '!';
        if (negate)
        {
            body = body[1..];
        }

        var found = false;
        for (var i = 0; i < body.Length; i++)
        {
            var low = body[i];
            if (low == '\\' && i + 1 < body.Length)
            {
                low = body[++i];
            }

            var high = low;
            if (i + 2 < body.Length && body[i + 1] == '-')
            {
                high = body[i + 2];
                if (high == '\\' && i + 3 < body.Length)
                {
                    high = body[i + 3];
                    i++;
                }

                i += 2;
            }

            if (c >= low && c <= high)
            {
                found = true;
            }
        }

        return found != negate;
    }
}
