using System.Runtime.InteropServices;

namespace Matchlock.Guest.Interop;

/// <summary>posix_spawn and its attribute/file-action builders.</summary>
/// <remarks>
/// The opaque posix_spawn_file_actions_t (80 bytes) and posix_spawnattr_t (336 bytes) are
/// allocated by <see cref="SpawnFileActions"/> and <see cref="SpawnAttributes"/> in native memory
/// that lives until their Dispose, which runs only after posix_spawn returned. glibc copies
/// paths given to addopen/addchdir_np, so the strings need only live for the call. These
/// functions return an error number instead of setting errno.
/// </remarks>
internal static unsafe partial class Libc
{
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int posix_spawn(int* pid, byte* path, void* fileActions, void* attributes, byte** argv, byte** envp);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int posix_spawn_file_actions_init(void* fileActions);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int posix_spawn_file_actions_destroy(void* fileActions);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int posix_spawn_file_actions_adddup2(void* fileActions, int fd, int newFd);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int posix_spawn_file_actions_addopen(void* fileActions, int fd, string path, int flags, uint mode);

    /// <summary>glibc ≥ 2.29.</summary>
    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int posix_spawn_file_actions_addchdir_np(void* fileActions, string path);

    /// <summary>glibc ≥ 2.34; uses close_range(2) in the child.</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int posix_spawn_file_actions_addclosefrom_np(void* fileActions, int lowFd);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int posix_spawnattr_init(void* attributes);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int posix_spawnattr_destroy(void* attributes);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int posix_spawnattr_setflags(void* attributes, short flags);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int posix_spawnattr_setpgroup(void* attributes, int processGroup);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int posix_spawnattr_setsigmask(void* attributes, void* signalSet);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int posix_spawnattr_setsigdefault(void* attributes, void* signalSet);

    /// <summary>Fills a caller-owned 128-byte sigset_t.</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int sigemptyset(void* signalSet);

    /// <summary>Fills a caller-owned 128-byte sigset_t.</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int sigfillset(void* signalSet);
}
