using Matchlock.Core.Events;
using Microsoft.Extensions.Logging;

namespace Matchlock.Core.Vfs.Hooks;

/// <summary>
/// Decides and reports VFS operations for one sandbox (docs/VFS.md "Hooks and events"). Before an
/// operation: every blocking rule and in-process <see cref="VfsLocalHook.Decide"/> hook that matches
/// is asked; deny wins; a hook that throws or overruns its timeout blocks (fail closed). Writes pass
/// through the <see cref="VfsLocalHook.MutateWrite"/> hooks in order. After a successful operation:
/// a <see cref="FileEvent"/> to the event log when <see cref="VfsInterception.EmitEvents"/>, and to
/// each matching <see cref="VfsLocalHook.Observe"/> hook on the thread pool. A refusal is always an
/// event in the log (with <see cref="FileEvent.BlockedBy"/>), as the network's are.
/// </summary>
internal sealed class VfsHookEngine
{
    /// <summary>How long an in-process before-hook may take when its rule gives no timeout.</summary>
    internal static readonly TimeSpan DefaultHookTimeout = TimeSpan.FromSeconds(5);

    private readonly VfsHookRule[] _blocks;
    private readonly VfsLocalHook[] _deciders;
    private readonly VfsLocalHook[] _mutators;
    private readonly VfsLocalHook[] _observers;
    private readonly HashSet<string> _checked;
    private readonly bool _emit;
    private readonly SandboxEventLog? _events;
    private readonly TimeProvider _time;
    private readonly ILogger _log;

    public VfsHookEngine(VfsInterception interception, SandboxEventLog? events, TimeProvider time, ILogger log)
    {
        interception.Validate();
        _blocks = [.. interception.Rules.Where(r => r.Phase == VfsHookPhase.Before && r.Action == VfsHookAction.Block)];
        _deciders = [.. interception.LocalHooks.Where(h => h.Decide is not null)];
        _mutators = [.. interception.LocalHooks.Where(h => h.MutateWrite is not null)];
        _observers = [.. interception.LocalHooks.Where(h => h.Observe is not null)];
        _emit = interception.EmitEvents;
        _events = events;
        _time = time;
        _log = log;
        _checked = [.. _blocks.Concat(_deciders.Select(h => h.Rule)).SelectMany(r => r.Ops.Count == 0 ? VfsOps.All : r.Ops)];
        if (_checked.Contains(VfsOps.RemoveAll))
        {
            _checked.Add(VfsOps.Remove);
        }
    }

    /// <summary>Whether any rule or hook looks at <paramref name="op"/> before it happens.</summary>
    public bool Checks(string op) => _checked.Contains(op);

    /// <summary>Whether operations are reported after they happen (events or observers).</summary>
    public bool Observes => _emit || _observers.Length > 0;

    /// <summary>Whether requests may wait on in-process code (decide or mutate hooks): then they must not hold up each other.</summary>
    public bool RunsUserCode => _deciders.Length > 0 || _mutators.Length > 0;

    /// <summary>Whether writes pass through mutate hooks.</summary>
    public bool Mutates => _mutators.Length > 0;

    /// <summary>
    /// Null when every rule and hook lets <paramref name="op"/> happen on <paramref name="path"/>
    /// (and <paramref name="newPath"/>, for rename and link); else who refused it and why. An
    /// unknown path (null) is refused whenever something checks the op: nothing can be matched.
    /// </summary>
    public string? Refusal(string op, string? path, string? newPath, VfsCaller caller)
    {
        if (!Checks(op))
        {
            return null;
        }

        if (path is null)
        {
            return "the host does not know this node's path";
        }

        foreach (var rule in _blocks)
        {
            if (Matches(rule, op, path) || (newPath is not null && Matches(rule, op, newPath)))
            {
                return Describe(rule);
            }
        }

        foreach (var hook in _deciders)
        {
            if (!Matches(hook.Rule, op, path) && (newPath is null || !Matches(hook.Rule, op, newPath)))
            {
                continue;
            }

            var request = new VfsHookRequest(op, path, newPath, caller.Uid, caller.Gid);
            var (answered, verdict) = Run(hook, () => hook.Decide!(request));
            if (!answered)
            {
                return $"{Describe(hook.Rule)} (the hook failed or timed out)";
            }

            if (verdict != VfsHookAction.Allow)
            {
                return Describe(hook.Rule);
            }
        }

        return null;
    }

    /// <summary>
    /// Null unless a blocking rule (for any op) covers <paramref name="path"/> or may cover a path
    /// below it: then moving that name away (rename) would take what the rule protects out of its
    /// reach — a file renamed out of a protected folder could be written, read or deleted under
    /// its new name — so the move is refused. Conservative: a rule that only limits, say, stat
    /// also pins the names it covers.
    /// </summary>
    public string? Pinned(string? path)
    {
        if (_blocks.Length == 0)
        {
            return null;
        }

        if (path is null)
        {
            return "the host does not know this node's path";
        }

        foreach (var rule in _blocks)
        {
            if (rule.Path.Length == 0 || VfsPathGlob.IsMatch(rule.Path, path) || VfsPathGlob.MayMatchBelow(rule.Path, path))
            {
                return $"{Describe(rule)} (it covers {rule.Path}; moving {path} would take it out of the rule's reach)";
            }
        }

        return null;
    }

    /// <summary>The bytes to write instead of <paramref name="data"/> (the same when no hook matches); null when a hook failed.</summary>
    public ReadOnlyMemory<byte>? Mutate(string path, long offset, ReadOnlyMemory<byte> data, VfsCaller caller)
    {
        var current = data;
        foreach (var hook in _mutators)
        {
            if (!Matches(hook.Rule, VfsOps.Write, path))
            {
                continue;
            }

            var request = new VfsWriteRequest(path, offset, current, caller.Uid, caller.Gid);
            var (answered, replaced) = Run(hook, () => hook.MutateWrite!(request));
            if (!answered)
            {
                return null;
            }

            if (replaced is { } bytes)
            {
                current = bytes.ToArray(); // the hook's buffer is its own; keep a copy past the call
            }
        }

        return current;
    }

    /// <summary>An operation that happened: to the log (if emitting) and to matching observers.</summary>
    public void Happened(FileEvent e)
    {
        if (_emit)
        {
            _events?.Publish(e);
        }

        foreach (var hook in _observers)
        {
            if (Matches(hook.Rule, e.Op, e.Path))
            {
                _ = Task.Run(() =>
                {
                    try
                    {
                        hook.Observe!(e);
                    }
                    catch (Exception ex) when (ex is not OutOfMemoryException)
                    {
                        VfsHookLog.HookFailed(_log, hook.Rule.Name, ex.Message);
                    }
                });
            }
        }
    }

    /// <summary>A refused operation: always in the log, as the network's refusals are.</summary>
    public void Refused(string op, string? path, string? newPath, VfsCaller caller, string reason)
    {
        VfsHookLog.Refused(_log, op, path ?? "?", reason);
        _events?.Publish(new FileEvent
        {
            Time = _time.GetUtcNow(),
            Op = op,
            Path = path ?? "",
            NewPath = newPath,
            Uid = caller.Uid,
            Gid = caller.Gid,
            BlockedBy = reason,
        });
    }

    public DateTimeOffset Now => _time.GetUtcNow();

    private static bool Matches(VfsHookRule rule, string op, string path) =>
        (rule.Ops.Count == 0 || rule.Ops.Any(o => VfsOps.Covers(o, op)))
        && (rule.Path.Length == 0 || VfsPathGlob.IsMatch(rule.Path, path));

    private static string Describe(VfsHookRule rule) => rule.Name.Length > 0 ? $"rule '{rule.Name}'" : "an unnamed rule";

    private static TimeSpan TimeoutOf(VfsLocalHook hook) =>
        hook.Rule.TimeoutMs > 0 ? TimeSpan.FromMilliseconds(hook.Rule.TimeoutMs) : DefaultHookTimeout;

    /// <summary>
    /// Runs user code off the request's thread, bounded by the hook's timeout; not answered when it
    /// throws or overruns. On a thread of its own, not the pool's: requests wait here on pool
    /// threads, and a hook queued behind them on a starved pool would time out and block
    /// operations that were never refused.
    /// </summary>
    private (bool Answered, T? Value) Run<T>(VfsLocalHook hook, Func<T> code)
    {
        var task = Task.Factory.StartNew(code, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        try
        {
            if (task.Wait(TimeoutOf(hook)))
            {
                return (true, task.Result);
            }

            VfsHookLog.HookFailed(_log, hook.Rule.Name, $"no answer within {TimeoutOf(hook).TotalMilliseconds:0} ms");
            return (false, default);
        }
        catch (AggregateException ex)
        {
            VfsHookLog.HookFailed(_log, hook.Rule.Name, ex.InnerException?.Message ?? ex.Message);
            return (false, default);
        }
    }
}

/// <summary>The VFS hook layer's log messages (event ids 1210–1219).</summary>
internal static partial class VfsHookLog
{
    [LoggerMessage(EventId = 1210, Level = LogLevel.Information, Message = "vfs: {Op} {Path} refused by {Reason}")]
    public static partial void Refused(ILogger log, string op, string path, string reason);

    [LoggerMessage(EventId = 1211, Level = LogLevel.Warning, Message = "vfs: hook '{Hook}' failed: {Reason}")]
    public static partial void HookFailed(ILogger log, string hook, string reason);
}
