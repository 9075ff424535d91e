using System.Collections.Concurrent;

namespace Matchlock.Core.Vfs;

/// <summary>
/// Open files or directories by the handle number the kernel echoes back (FUSE's <c>fh</c>).
/// Numbers are never reused, so a stale or forged handle finds nothing (EBADF).
/// </summary>
internal sealed class HandleTable<T> : IDisposable
    where T : class
{
    private readonly ConcurrentDictionary<ulong, T> _open = new();
    private long _next;

    public int Count => _open.Count;

    public ulong Add(T value)
    {
        var handle = (ulong)Interlocked.Increment(ref _next);
        _open[handle] = value;
        return handle;
    }

    public bool TryGet(ulong handle, out T value) => _open.TryGetValue(handle, out value!);

    public bool TryRemove(ulong handle, out T value) => _open.TryRemove(handle, out value!);

    public void Dispose()
    {
        foreach (var handle in _open.Keys)
        {
            if (_open.TryRemove(handle, out var value))
            {
                (value as IDisposable)?.Dispose();
            }
        }
    }
}
