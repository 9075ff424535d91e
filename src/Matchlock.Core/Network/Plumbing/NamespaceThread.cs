using System.Runtime.InteropServices;

namespace Matchlock.Core.Network.Plumbing;

/// <summary>
/// Runs a piece of work on a fresh thread that has joined a network namespace (setns(2) with
/// CLONE_NEWNET), then lets the thread die. Sockets created there stay in that namespace for
/// their whole life (socket(7): a socket belongs to the namespace it was created in), so the
/// rest of the process can use them from any thread while staying in the host namespace itself.
/// </summary>
/// <remarks>
/// A dedicated thread, never a pool thread: the namespace is a per-thread attribute, and a pool
/// thread carrying a sandbox's namespace would leak it into unrelated work. The thread is not
/// reused after <c>setns</c>, so nothing else ever runs in it.
/// </remarks>
internal static partial class NamespaceThread
{
    private const int CLONE_NEWNET = 0x40000000;
    private const int O_RDONLY = 0;
    private const int O_CLOEXEC = 0x80000;

    public static T Run<T>(string namespacePath, Func<T> work)
    {
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                Enter(namespacePath);
                result = work();
            }
            catch (Exception ex)
            {
                // Rethrown on the caller's thread below.
                error = ex;
            }
        })
        {
            IsBackground = true,
            Name = "matchlock-netns",
        };
        thread.Start();
        thread.Join();
        if (error is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        }

        return result;
    }

    private static void Enter(string namespacePath)
    {
        var fd = open(namespacePath, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
        {
            throw new NetworkNamespaceException($"cannot open network namespace {namespacePath}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }

        try
        {
            if (setns(fd, CLONE_NEWNET) != 0)
            {
                throw new NetworkNamespaceException($"setns({namespacePath}, CLONE_NEWNET) failed: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())} (needs CAP_SYS_ADMIN)");
            }
        }
        finally
        {
            _ = close(fd);
        }
    }

    // Safety: value arguments and a UTF-8 path marshalled (copied, NUL-terminated) by the
    // source generator for the duration of the call; the fd is ours and closed once.
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}
