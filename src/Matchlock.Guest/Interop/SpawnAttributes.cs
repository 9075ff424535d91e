using System.Runtime.InteropServices;

namespace Matchlock.Guest.Interop;

/// <summary>
/// Owns a posix_spawnattr_t set up for a clean child: empty signal mask and every signal back to
/// its default action (.NET ignores SIGPIPE, and SIG_IGN survives exec), plus either a new
/// process group or a new session.
/// </summary>
internal sealed unsafe class SpawnAttributes : IDisposable
{
    // glibc's struct is 336 bytes, sigset_t 128; over-allocate both.
    private const int StorageSize = 512;
    private const int SignalSetSize = 256;
    private void* _storage;

    internal SpawnAttributes(bool newSession)
    {
        _storage = NativeMemory.AllocZeroed(StorageSize);
        Check(Libc.posix_spawnattr_init(_storage), "posix_spawnattr_init");

        var set = stackalloc byte[SignalSetSize];
        Check(Libc.sigemptyset(set), "sigemptyset");
        Check(Libc.posix_spawnattr_setsigmask(_storage, set), "posix_spawnattr_setsigmask");
        // sigaction on SIGKILL/SIGSTOP fails in the child; glibc ignores that for SETSIGDEF.
        Check(Libc.sigfillset(set), "sigfillset");
        Check(Libc.posix_spawnattr_setsigdefault(_storage, set), "posix_spawnattr_setsigdefault");

        short flags = LibcConstants.POSIX_SPAWN_SETSIGMASK | LibcConstants.POSIX_SPAWN_SETSIGDEF;
        if (newSession)
        {
            // setsid() runs before the file actions (glibc spawni.c), so opening the PTY slave
            // without O_NOCTTY there makes it the controlling terminal of the new session.
            flags |= LibcConstants.POSIX_SPAWN_SETSID;
        }
        else
        {
            // setpgid(0, 0): a group of its own whose id is the child's pid, so kill(-pid)
            // reaches the command and everything it starts, and nothing else.
            flags |= LibcConstants.POSIX_SPAWN_SETPGROUP;
            Check(Libc.posix_spawnattr_setpgroup(_storage, 0), "posix_spawnattr_setpgroup");
        }

        Check(Libc.posix_spawnattr_setflags(_storage, flags), "posix_spawnattr_setflags");
    }

    internal void* Pointer => _storage;

    private static void Check(int result, string operation)
    {
        if (result != 0)
        {
            // posix_spawnattr_* return the error; sigemptyset/sigfillset return -1 and set errno.
            throw result == -1 ? NativeCallException.FromLastError(operation) : new NativeCallException(operation, result);
        }
    }

    public void Dispose()
    {
        if (_storage != null)
        {
            _ = Libc.posix_spawnattr_destroy(_storage);
            NativeMemory.Free(_storage);
            _storage = null;
        }
    }
}
