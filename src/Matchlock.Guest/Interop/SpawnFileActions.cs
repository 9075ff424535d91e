using System.Runtime.InteropServices;

namespace Matchlock.Guest.Interop;

/// <summary>Owns a posix_spawn_file_actions_t; each Add* throws with the action named.</summary>
internal sealed unsafe class SpawnFileActions : IDisposable
{
    // glibc's struct is 80 bytes; over-allocate so a libc with a larger one cannot overrun us.
    private const int StorageSize = 256;
    private void* _storage;

    internal SpawnFileActions()
    {
        _storage = NativeMemory.AllocZeroed(StorageSize);
        Check(Libc.posix_spawn_file_actions_init(_storage), "posix_spawn_file_actions_init");
    }

    internal void* Pointer => _storage;

    internal void AddDup2(int fd, int newFd) =>
        Check(Libc.posix_spawn_file_actions_adddup2(_storage, fd, newFd), $"posix_spawn_file_actions_adddup2({fd}, {newFd})");

    internal void AddOpen(int fd, string path, int flags, uint mode = 0) =>
        Check(Libc.posix_spawn_file_actions_addopen(_storage, fd, path, flags, mode), $"posix_spawn_file_actions_addopen({path})");

    internal void AddChdir(string path) =>
        Check(Libc.posix_spawn_file_actions_addchdir_np(_storage, path), $"posix_spawn_file_actions_addchdir_np({path})");

    internal void AddCloseFrom(int lowFd) =>
        Check(Libc.posix_spawn_file_actions_addclosefrom_np(_storage, lowFd), "posix_spawn_file_actions_addclosefrom_np");

    private static void Check(int error, string operation)
    {
        if (error != 0)
        {
            throw new NativeCallException(operation, error);
        }
    }

    public void Dispose()
    {
        if (_storage != null)
        {
            _ = Libc.posix_spawn_file_actions_destroy(_storage);
            NativeMemory.Free(_storage);
            _storage = null;
        }
    }
}
