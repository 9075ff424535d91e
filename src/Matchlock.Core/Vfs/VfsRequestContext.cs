namespace Matchlock.Core.Vfs;

/// <summary>
/// The request a thread is answering: the FUSE server sets the guest caller (its header's uid and
/// gid) before it calls the provider and clears it after, so layers in front of a provider (the
/// hooks, docs/VFS.md) can name who did what without every provider method taking it. A request
/// is answered start to end on one thread.
/// </summary>
internal static class VfsRequestContext
{
    [ThreadStatic]
    private static VfsCaller _caller;

    public static VfsCaller Caller => _caller;

    /// <summary>Sets the caller until the returned scope is disposed.</summary>
    public static Scope Enter(VfsCaller caller)
    {
        var previous = _caller;
        _caller = caller;
        return new Scope(previous);
    }

    public readonly struct Scope(VfsCaller previous) : IDisposable
    {
        public void Dispose() => _caller = previous;
    }
}
