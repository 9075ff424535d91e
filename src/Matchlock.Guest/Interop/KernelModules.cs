using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Matchlock.Guest.Interop;

/// <summary>A module file opened while it was still reachable (the initramfs), kept open to be loaded later.</summary>
/// <param name="Path">Where it was, for messages.</param>
/// <param name="File">O_RDONLY: finit_module reads the module through it.</param>
internal sealed record RetainedModule(string Path, SafeFileHandle File);

/// <summary>finit_module(2), which glibc does not wrap.</summary>
internal static unsafe class KernelModules
{
    /// <summary>Loads the module open on <paramref name="file"/> with no parameters; returns 0 or the errno (EEXIST: already loaded).</summary>
    internal static int Load(SafeHandle file)
    {
        // finit_module(fd, "", 0): no parameters, no MODULE_INIT_* flags. The u8 literal lives
        // in the binary's read-only data, so the pointer stays valid for the call; the caller's
        // handle keeps the fd open for it.
        fixed (byte* noParameters = "\0"u8)
        {
            return Libc.syscall(LibcConstants.SYS_finit_module, file.DangerousGetHandle(), (nint)noParameters, 0) == 0
                ? 0
                : Marshal.GetLastPInvokeError();
        }
    }
}
