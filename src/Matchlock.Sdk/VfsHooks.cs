namespace Matchlock.Sdk;

/// <summary>When a VFS rule runs.</summary>
public enum VfsHookPhase
{
    /// <summary>Before the operation: a host rule can block it; an SDK action or mutate hook runs before the SDK's own file call.</summary>
    Before,

    /// <summary>After the operation succeeded: SDK after-hooks run on the file events the host reports.</summary>
    After,
}

/// <summary>What a host-side VFS rule (or an SDK action hook) does with a matching operation.</summary>
public enum VfsHookAction
{
    /// <summary>Let it happen.</summary>
    Allow,

    /// <summary>Refuse it: the guest gets <c>EPERM</c> (host rule), or the SDK call throws <see cref="MatchlockVfsHookBlockedException"/> (action hook).</summary>
    Block,
}

/// <summary>The operation names VFS rules match (<see cref="VfsHookRule.Ops"/>) and file events carry (<see cref="FileEvent.Op"/>).</summary>
public static class VfsOps
{
    /// <summary>Reads a node's attributes.</summary>
    public const string Stat = "stat";

    /// <summary>Lists a directory (also the op of the SDK's <see cref="Sandbox.ListFilesAsync"/>).</summary>
    public const string ReadDir = "readdir";

    /// <summary>Opens an existing file.</summary>
    public const string Open = "open";

    /// <summary>Creates a file.</summary>
    public const string Create = "create";

    /// <summary>Makes a directory.</summary>
    public const string Mkdir = "mkdir";

    /// <summary>Changes permission bits.</summary>
    public const string Chmod = "chmod";

    /// <summary>Changes the owner.</summary>
    public const string Chown = "chown";

    /// <summary>Changes times.</summary>
    public const string Utimes = "utimes";

    /// <summary>Changes a file's length.</summary>
    public const string Truncate = "truncate";

    /// <summary>Deletes a file or an empty directory.</summary>
    public const string Remove = "remove";

    /// <summary>Renames (the event's <see cref="FileEvent.NewPath"/> is the target).</summary>
    public const string Rename = "rename";

    /// <summary>Makes a symbolic link.</summary>
    public const string Symlink = "symlink";

    /// <summary>Reads a symbolic link.</summary>
    public const string Readlink = "readlink";

    /// <summary>Makes a hard link.</summary>
    public const string Link = "link";

    /// <summary>Reads bytes (also the op of the SDK's <see cref="Sandbox.ReadFileAsync"/>).</summary>
    public const string Read = "read";

    /// <summary>Writes bytes (also the op of the SDK's <see cref="Sandbox.WriteFileAsync(string, ReadOnlyMemory{byte}, UnixFileMode?, CancellationToken)"/>).</summary>
    public const string Write = "write";

    /// <summary>Closes a file.</summary>
    public const string Close = "close";

    /// <summary>Flushes a file.</summary>
    public const string Sync = "sync";

    /// <summary>Reads file system statistics.</summary>
    public const string Statfs = "statfs";

    /// <summary>Reads or changes extended attributes.</summary>
    public const string Xattr = "xattr";
}

/// <summary>What an SDK action hook (<see cref="VfsHookRule.ActionHook"/>) is asked about: one of this SDK's own file calls, before it is sent.</summary>
/// <param name="Op"><see cref="VfsOps.Write"/>, <see cref="VfsOps.Read"/> or <see cref="VfsOps.ReadDir"/>.</param>
/// <param name="Path">The guest path the call names.</param>
/// <param name="Size">The bytes to write (0 for read and readdir).</param>
/// <param name="Mode">The permission bits to write with (0 for read and readdir).</param>
/// <param name="Uid">This process's effective uid.</param>
/// <param name="Gid">This process's effective gid.</param>
public sealed record VfsActionRequest(string Op, string Path, long Size, uint Mode, int Uid, int Gid);

/// <summary>What an SDK mutate hook (<see cref="VfsHookRule.MutateHook"/>) is given: a write this SDK is about to send.</summary>
/// <param name="Path">The guest path.</param>
/// <param name="Content">The content as it stands (after earlier mutate hooks).</param>
/// <param name="Mode">The permission bits.</param>
/// <param name="Uid">This process's effective uid.</param>
/// <param name="Gid">This process's effective gid.</param>
public sealed record VfsMutateRequest(string Path, ReadOnlyMemory<byte> Content, uint Mode, int Uid, int Gid)
{
    /// <summary>The length of <see cref="Content"/>.</summary>
    public long Size => Content.Length;
}

/// <summary>
/// An SDK file call refused by an action hook (<see cref="VfsHookRule.ActionHook"/>): nothing was
/// sent to the server. The sandbox is still usable.
/// </summary>
public sealed class MatchlockVfsHookBlockedException : MatchlockFileException
{
    /// <summary>Creates the exception.</summary>
    public MatchlockVfsHookBlockedException(string op, string path, string? hookName)
        : base($"vfs action hook {(string.IsNullOrEmpty(hookName) ? "" : $"'{hookName}' ")}blocked {op} {path}")
    {
        Op = op;
        Path = path;
        HookName = hookName;
    }

    /// <summary>The refused operation (<see cref="VfsOps"/>).</summary>
    public string Op { get; }

    /// <summary>The guest path.</summary>
    public string Path { get; }

    /// <summary>The rule's <see cref="VfsHookRule.Name"/>.</summary>
    public string? HookName { get; }
}
