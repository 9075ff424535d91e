using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Matchlock.Core.Interop;

/// <summary>
/// An flock(2) lock on a file, shared or exclusive, released on dispose or when the process dies
/// (the kernel drops it with the descriptor), so a killed matchlock never wedges the store.
/// </summary>
/// <remarks>
/// Waiting polls with LOCK_NB rather than blocking in flock: a blocked thread cannot be cancelled,
/// and a Ctrl-C while waiting for another pull must end promptly.
/// </remarks>
internal sealed partial class FileLock : IDisposable
{
    private const int LockSh = 1;
    private const int LockEx = 2;
    private const int LockNb = 4;
    private const int EWouldBlock = 11;
    private const int EIntr = 4;

    private readonly SafeFileHandle _handle;

    private FileLock(SafeFileHandle handle) => _handle = handle;

    /// <summary>Takes the lock without waiting; null when another process holds a conflicting one.</summary>
    public static FileLock? TryAcquire(string path, bool exclusive)
    {
        var handle = Open(path);
        try
        {
            if (TryFlock(handle, exclusive))
            {
                return new FileLock(handle);
            }
        }
        catch
        {
            handle.Dispose();
            throw;
        }

        handle.Dispose();
        return null;
    }

    /// <summary>
    /// Takes the lock, waiting as long as it takes (until <paramref name="cancellationToken"/>).
    /// <paramref name="onWait"/> runs once, when the lock is found held, so the caller can tell the
    /// user why nothing happens.
    /// </summary>
    public static async Task<FileLock> AcquireAsync(string path, bool exclusive, Action? onWait, CancellationToken cancellationToken)
    {
        var handle = Open(path);
        try
        {
            var told = false;
            while (!TryFlock(handle, exclusive))
            {
                if (!told)
                {
                    onWait?.Invoke();
                    told = true;
                }

                await Task.Delay(50, cancellationToken);
            }

            return new FileLock(handle);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Takes the lock on an existing file without creating it and without waiting; null when
    /// another process holds a conflicting one. The descriptor is opened read-write or read-only
    /// as <paramref name="writable"/> says, so a file we may not write fails here, with its path,
    /// rather than later in a tool that opens it.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="UnauthorizedAccessException">We may not open it that way.</exception>
    public static FileLock? TryAcquireExisting(string path, bool exclusive, bool writable)
    {
        var fd = open(path, (writable ? ORdWr : ORdOnly) | OCloexec, 0);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            var why = Marshal.GetPInvokeErrorMessage(errno);
            throw errno switch
            {
                ENoEnt => new FileNotFoundException($"{path} does not exist", path),
                EAcces or EPerm or ERofs => new UnauthorizedAccessException($"cannot open {path} for {(writable ? "writing" : "reading")}: {why}"),
                _ => new IOException($"cannot open {path}: {why}"),
            };
        }

        var handle = new SafeFileHandle((IntPtr)fd, ownsHandle: true);
        try
        {
            if (TryFlock(handle, exclusive))
            {
                return new FileLock(handle);
            }
        }
        catch
        {
            handle.Dispose();
            throw;
        }

        handle.Dispose();
        return null;
    }

    /// <summary>The locked descriptor, for fstat-style checks; owned by this lock.</summary>
    public SafeFileHandle Handle => _handle;

    public void Dispose() => _handle.Dispose();

    private static SafeFileHandle Open(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        // open(2) directly: .NET's FileStream/File.OpenHandle take an flock of their own (LOCK_SH
        // for any sharing mode) which would conflict with another process's exclusive lock here.
        var fd = open(path, ORdWr | OCreat | OCloexec, 0x1A4 /* 0644 */);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"cannot open lock file {path}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }

        return new SafeFileHandle((IntPtr)fd, ownsHandle: true);
    }

    private static bool TryFlock(SafeFileHandle handle, bool exclusive)
    {
        while (true)
        {
            if (flock(handle, (exclusive ? LockEx : LockSh) | LockNb) == 0)
            {
                return true;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno == EWouldBlock)
            {
                return false;
            }

            if (errno != EIntr)
            {
                throw new IOException($"flock failed: {Marshal.GetPInvokeErrorMessage(errno)}");
            }
        }
    }

    private const int ENoEnt = 2;
    private const int EPerm = 1;
    private const int EAcces = 13;
    private const int ERofs = 30;
    private const int ORdOnly = 0x0;
    private const int ORdWr = 0x2;
    private const int OCreat = 0x40;
    private const int OCloexec = 0x80000;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int flock(SafeFileHandle fd, int operation);
}
