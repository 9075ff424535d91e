using System.Text;
using System.Text.RegularExpressions;

namespace Matchlock.Sdk.Internal;

/// <summary>
/// The VFS rules that run in this process (<see cref="VfsHookRule.ActionHook"/>,
/// <see cref="VfsHookRule.MutateHook"/>, <see cref="VfsHookRule.Hook"/>,
/// <see cref="VfsHookRule.DangerousHook"/>), compiled once per sandbox.
/// </summary>
internal sealed class VfsLocalHooks
{
    private readonly List<(VfsHookRule Rule, Regex? Path)> _action = [];
    private readonly List<(VfsHookRule Rule, Regex? Path)> _mutate = [];
    private readonly List<(VfsHookRule Rule, Regex? Path)> _after = [];
    private int _afterRunning; // 1 while a batch of safe after-hooks runs

    /// <summary>This process's effective uid and gid (from /proc: no native call), 0 where there is no /proc.</summary>
    private static readonly Lazy<(int Uid, int Gid)> Ids = new(ReadIds);

    private VfsLocalHooks()
    {
    }

    public bool HasAfterHooks => _after.Count > 0;

    /// <summary>Whether <paramref name="rule"/> runs here (and is therefore not sent to the server).</summary>
    public static bool IsLocal(VfsHookRule rule) =>
        rule.ActionHook is not null || rule.MutateHook is not null || rule.Hook is not null || rule.DangerousHook is not null;

    /// <summary>Refuses rules that mix callbacks or give one a phase or action it cannot have.</summary>
    /// <exception cref="ArgumentException">A rule is wrong; the message names it and says the fix.</exception>
    public static void Validate(VfsInterception interception)
    {
        foreach (var rule in interception.Rules)
        {
            ArgumentNullException.ThrowIfNull(rule, nameof(interception));
            var name = $"vfs rule '{rule.Name}'";
            var callbacks = (rule.ActionHook is null ? 0 : 1) + (rule.MutateHook is null ? 0 : 1) + (rule.Hook is null ? 0 : 1) + (rule.DangerousHook is null ? 0 : 1);
            if (callbacks == 0)
            {
                continue;
            }

            if (callbacks > 1)
            {
                throw new ArgumentException($"{name}: set one of ActionHook, MutateHook, Hook and DangerousHook per rule", nameof(interception));
            }

            if (rule.Action is { } action && action != VfsHookAction.Allow)
            {
                throw new ArgumentException($"{name}: a callback rule decides in the callback; leave Action unset (an ActionHook returns VfsHookAction.Block to block)", nameof(interception));
            }

            var after = rule.Hook is not null || rule.DangerousHook is not null;
            if (rule.Phase is { } phase && phase != (after ? VfsHookPhase.After : VfsHookPhase.Before))
            {
                throw new ArgumentException($"{name}: {(after ? "Hook and DangerousHook run after the operation (Phase = After or unset)" : "ActionHook and MutateHook run before the call (Phase = Before or unset)")}", nameof(interception));
            }

            try
            {
                _ = rule.Path is { Length: > 0 } path ? Glob(path) : null; // a broken pattern fails here, not at the first event
            }
            catch (ArgumentException ex)
            {
                throw new ArgumentException($"{name}: {ex.Message}", nameof(interception), ex);
            }
        }
    }

    /// <summary>The local hooks of <paramref name="interception"/>, or null when it has none.</summary>
    public static VfsLocalHooks? Compile(VfsInterception? interception)
    {
        if (interception is null)
        {
            return null;
        }

        var hooks = new VfsLocalHooks();
        foreach (var rule in interception.Rules)
        {
            var entry = (rule, rule.Path is { Length: > 0 } path ? Glob(path) : null);
            if (rule.ActionHook is not null)
            {
                hooks._action.Add(entry);
            }
            else if (rule.MutateHook is not null)
            {
                hooks._mutate.Add(entry);
            }
            else if (rule.Hook is not null || rule.DangerousHook is not null)
            {
                hooks._after.Add(entry);
            }
        }

        return hooks._action.Count + hooks._mutate.Count + hooks._after.Count > 0 ? hooks : null;
    }

    /// <summary>Runs the action hooks for one of this SDK's file calls, in order.</summary>
    /// <exception cref="MatchlockVfsHookBlockedException">A hook blocked it.</exception>
    public void CheckAction(string op, string path, long size, uint mode)
    {
        VfsActionRequest? request = null;
        foreach (var (rule, glob) in _action)
        {
            if (!Matches(rule, glob, op, path))
            {
                continue;
            }

            request ??= new VfsActionRequest(op, path, size, mode, Ids.Value.Uid, Ids.Value.Gid);
            if (rule.ActionHook!(request) == VfsHookAction.Block)
            {
                throw new MatchlockVfsHookBlockedException(op, path, rule.Name);
            }
        }
    }

    /// <summary>The content to write after every matching mutate hook had its turn.</summary>
    public ReadOnlyMemory<byte> MutateWrite(string path, ReadOnlyMemory<byte> content, uint mode)
    {
        var current = content;
        foreach (var (rule, glob) in _mutate)
        {
            if (Matches(rule, glob, VfsOps.Write, path) && rule.MutateHook!(new VfsMutateRequest(path, current, mode, Ids.Value.Uid, Ids.Value.Gid)) is { } replaced)
            {
                current = replaced;
            }
        }

        return current;
    }

    /// <summary>
    /// Starts the after-hooks that match <paramref name="file"/>, off the caller's thread (the
    /// rpc reader): dangerous ones each on their own, safe ones as one batch unless a batch is
    /// running (then this event is not theirs: it may be one they caused).
    /// </summary>
    public void OnFileEvent(Sandbox sandbox, FileEvent file)
    {
        List<VfsHookRule>? safe = null;
        foreach (var (rule, glob) in _after)
        {
            if (!Matches(rule, glob, file.Op, file.Path))
            {
                continue;
            }

            if (rule.DangerousHook is { } dangerous)
            {
                _ = Task.Run(() => RunQuietlyAsync(rule, ct => dangerous(sandbox, file, ct)));
            }
            else
            {
                (safe ??= []).Add(rule);
            }
        }

        if (safe is null || Interlocked.CompareExchange(ref _afterRunning, 1, 0) != 0)
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            try
            {
                foreach (var rule in safe)
                {
                    await RunQuietlyAsync(rule, ct => rule.Hook!(file, ct));
                }
            }
            finally
            {
                Volatile.Write(ref _afterRunning, 0);
            }
        });
    }

    private static async Task RunQuietlyAsync(VfsHookRule rule, Func<CancellationToken, ValueTask> run)
    {
        using var deadline = rule.Timeout is { } timeout ? new CancellationTokenSource(timeout) : null;
        try
        {
            await run(deadline?.Token ?? CancellationToken.None);
        }
#pragma warning disable CA1031 // an after-hook cannot fail the operation it saw: its errors go nowhere, as in the other SDKs
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    private static (int Uid, int Gid) ReadIds()
    {
        int Effective(string[] lines, string key) =>
            lines.FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal))?.Split('\t', StringSplitOptions.RemoveEmptyEntries) is { Length: > 2 } fields
            && int.TryParse(fields[2], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) ? id : 0;
        try
        {
            var lines = File.ReadAllLines("/proc/self/status");
            return (Effective(lines, "Uid:"), Effective(lines, "Gid:"));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return (0, 0);
        }
    }

    private static bool Matches(VfsHookRule rule, Regex? glob, string op, string path) =>
        (rule.Ops.Count == 0 || rule.Ops.Any(o => string.Equals(o, op, StringComparison.OrdinalIgnoreCase)))
        && (glob is null || glob.IsMatch(path));

    /// <summary>
    /// The server's VFS path glob as a regex: <c>*</c> and <c>?</c> within a segment, <c>**</c>
    /// across, <c>[…]</c> classes (<c>!</c> or <c>^</c> negates), <c>\x</c> a literal x.
    /// </summary>
    /// <exception cref="ArgumentException">The pattern is malformed.</exception>
    internal static Regex Glob(string pattern)
    {
        var regex = new StringBuilder("^");
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            switch (c)
            {
                case '*' when i + 1 < pattern.Length && pattern[i + 1] == '*':
                    regex.Append(".*");
                    i++;
                    break;
                case '*':
                    regex.Append("[^/]*");
                    break;
                case '?':
                    regex.Append("[^/]");
                    break;
                case '\\':
                    if (++i >= pattern.Length)
                    {
                        throw new ArgumentException($"vfs rule path '{pattern}' ends with a lone backslash", nameof(pattern));
                    }

                    regex.Append(Regex.Escape(pattern[i].ToString()));
                    break;
                case '[':
                    // A ']' right after '[' (or '[!') is a member, not the end.
                    var first = i + 1 < pattern.Length && pattern[i + 1] is '!' or '^' ? i + 2 : i + 1;
                    var end = first + 1 <= pattern.Length ? pattern.IndexOf(']', first + 1) : -1;
                    if (end < 0)
                    {
                        throw new ArgumentException($"vfs rule path '{pattern}' has an unclosed [ class", nameof(pattern));
                    }

                    var body = pattern[(i + 1)..end];
                    var negate = body.StartsWith('!') || body.StartsWith('^');
                    regex.Append(negate ? "[^/" : "[");
                    foreach (var ch in negate ? body[1..] : body)
                    {
                        regex.Append(ch is '\\' or ']' or '[' or '^' ? "\\" + ch : ch.ToString());
                    }

                    regex.Append(']');
                    i = end;
                    break;
                default:
                    regex.Append(Regex.Escape(c.ToString()));
                    break;
            }
        }

        return new Regex(regex.Append('$').ToString(), RegexOptions.CultureInvariant | RegexOptions.NonBacktracking);
    }
}
