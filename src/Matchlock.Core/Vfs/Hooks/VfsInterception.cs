namespace Matchlock.Core.Vfs.Hooks;

/// <summary>When a hook runs: before the operation reaches the provider (it may block it) or after it succeeded.</summary>
public enum VfsHookPhase
{
    Before,
    After,
}

/// <summary>What a matching rule does. Deny wins: one blocking rule blocks, whatever others allow.</summary>
public enum VfsHookAction
{
    Allow,
    Block,
}

/// <summary>
/// A rule as the rpc's <c>vfs.interception.rules</c> carries it (docs/VFS.md "Hooks and events"):
/// for operations in <see cref="Ops"/> (empty: all) on guest paths matching <see cref="Path"/>
/// (empty: all; see <see cref="VfsPathGlob"/>), <see cref="Action"/>. Only before-rules can block.
/// </summary>
public sealed record VfsHookRule
{
    public string Name { get; init; } = "";

    public VfsHookPhase Phase { get; init; } = VfsHookPhase.Before;

    /// <summary>Operation names (<see cref="VfsOps"/>), lower-case.</summary>
    public IReadOnlyList<string> Ops { get; init; } = [];

    public string Path { get; init; } = "";

    public VfsHookAction Action { get; init; } = VfsHookAction.Allow;

    /// <summary>
    /// For a rule that runs code (<see cref="VfsLocalHook"/>): how long it may take before the
    /// operation is blocked (fail closed). Plain allow/block rules decide at once.
    /// </summary>
    public int TimeoutMs { get; init; }
}

/// <summary>One operation as a hook sees it (a <see cref="VfsLocalHook.Decide"/> request).</summary>
/// <param name="Op">The operation (<see cref="VfsOps"/>).</param>
/// <param name="Path">The full guest path (for rename and link: the source).</param>
/// <param name="NewPath">For rename and link: the destination.</param>
/// <param name="Uid">The guest caller's uid.</param>
/// <param name="Gid">The guest caller's gid.</param>
public sealed record VfsHookRequest(string Op, string Path, string? NewPath, uint Uid, uint Gid);

/// <summary>A write a <see cref="VfsLocalHook.MutateWrite"/> hook may replace.</summary>
/// <param name="Path">The full guest path.</param>
/// <param name="Offset">Where in the file the guest writes.</param>
/// <param name="Data">What the guest writes (valid only during the call).</param>
/// <param name="Uid">The guest caller's uid.</param>
/// <param name="Gid">The guest caller's gid.</param>
public sealed record VfsWriteRequest(string Path, long Offset, ReadOnlyMemory<byte> Data, uint Uid, uint Gid);

/// <summary>
/// An in-process hook (the library API; the rpc's SDK hooks run in the SDK's process instead). Set
/// exactly one of <see cref="Decide"/> (before: allow or block), <see cref="MutateWrite"/> (before
/// a write: the bytes to write instead, or null to keep them) or <see cref="Observe"/> (after: sees
/// the operation's <see cref="FileEvent"/>; runs off the request's thread and cannot fail it).
/// A before-hook that throws or runs past <see cref="VfsHookRule.TimeoutMs"/> (default 5 s) blocks.
/// </summary>
public sealed record VfsLocalHook
{
    public required VfsHookRule Rule { get; init; }

    public Func<VfsHookRequest, VfsHookAction>? Decide { get; init; }

    public Func<VfsWriteRequest, ReadOnlyMemory<byte>?>? MutateWrite { get; init; }

    public Action<FileEvent>? Observe { get; init; }
}

/// <summary>
/// What the host checks and reports of a sandbox's VFS operations (docs/VFS.md "Hooks and
/// events"): rules, in-process hooks, and whether every operation becomes a <c>file</c> event.
/// </summary>
public sealed record VfsInterception
{
    public IReadOnlyList<VfsHookRule> Rules { get; init; } = [];

    public IReadOnlyList<VfsLocalHook> LocalHooks { get; init; } = [];

    /// <summary>Every successful operation becomes a <see cref="FileEvent"/> on the sandbox's event log.</summary>
    public bool EmitEvents { get; init; }

    /// <summary>Nothing to check or report: the mounts are served without the hook layer.</summary>
    public bool IsEmpty => Rules.Count == 0 && LocalHooks.Count == 0 && !EmitEvents;

    /// <summary>Checks every rule: known ops, a usable glob, one action per local hook.</summary>
    /// <exception cref="VfsHookRuleException">Which rule is wrong and how.</exception>
    public void Validate()
    {
        foreach (var rule in Rules.Concat(LocalHooks.Select(h => h.Rule)))
        {
            var name = rule.Name.Length > 0 ? $"'{rule.Name}'" : "(unnamed)";
            foreach (var op in rule.Ops)
            {
                if (!VfsOps.IsKnown(op))
                {
                    throw new VfsHookRuleException($"vfs hook rule {name}: unknown op '{op}'; use one of {string.Join(", ", VfsOps.All)}");
                }
            }

            if (rule.Path.Length > 0 && VfsPathGlob.Problem(rule.Path) is { } problem)
            {
                throw new VfsHookRuleException($"vfs hook rule {name}: path '{rule.Path}' {problem}");
            }

            if (rule.Phase == VfsHookPhase.After && rule.Action == VfsHookAction.Block)
            {
                throw new VfsHookRuleException($"vfs hook rule {name}: an after-rule cannot block (the operation has happened); use phase before");
            }

            if (rule.TimeoutMs < 0)
            {
                throw new VfsHookRuleException($"vfs hook rule {name}: timeout_ms must not be negative");
            }
        }

        foreach (var hook in LocalHooks)
        {
            var name = hook.Rule.Name.Length > 0 ? $"'{hook.Rule.Name}'" : "(unnamed)";
            var set = (hook.Decide is null ? 0 : 1) + (hook.MutateWrite is null ? 0 : 1) + (hook.Observe is null ? 0 : 1);
            if (set != 1)
            {
                throw new VfsHookRuleException($"vfs hook {name}: set exactly one of Decide, MutateWrite, Observe");
            }

            if ((hook.Observe is null) != (hook.Rule.Phase == VfsHookPhase.Before))
            {
                throw new VfsHookRuleException($"vfs hook {name}: Decide and MutateWrite run before the operation, Observe after; set the phase to match");
            }
        }
    }
}

/// <summary>A VFS hook rule that cannot be used (the user's input).</summary>
public sealed class VfsHookRuleException(string message) : InvalidInputException(message);
