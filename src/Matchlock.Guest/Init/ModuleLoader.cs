using System.Runtime.InteropServices;
using Matchlock.Guest.Diagnostics;
using Matchlock.Guest.Interop;

namespace Matchlock.Guest.Init;

/// <summary>
/// Loads the kernel modules the host packed into the initramfs, in the order of
/// /etc/matchlock/modules (dependencies first; CONTRACTS.md). finit_module takes an fd, so the
/// uncompressed .ko is read by the kernel directly. A failure is logged and the boot goes on: a
/// missing optional module (say, fuse) should not keep the VM from starting, and a missing
/// essential one fails clearly later (no block device).
/// </summary>
internal static class ModuleLoader
{
    internal const string ListPath = "/etc/matchlock/modules";

    /// <summary>The extra modules for a NIC (CONTRACTS), loaded only when the VM has one.</summary>
    internal const string NetListPath = "/etc/matchlock/modules.net";

    internal static void LoadListed(string listPath = ListPath)
    {
        if (!File.Exists(listPath))
        {
            GuestLog.Warn($"no module list at {listPath}; assuming a kernel with the drivers built in");
            return;
        }

        foreach (var raw in File.ReadAllLines(listPath))
        {
            var path = raw.Trim();
            if (path.Length == 0 || path.StartsWith('#'))
            {
                continue;
            }

            Load(path);
        }
    }

    private static unsafe void Load(string path)
    {
        SafeHandle file;
        try
        {
            file = FileDescriptors.Open(path, LibcConstants.O_RDONLY);
        }
        catch (NativeCallException e)
        {
            GuestLog.Error($"module {path}: {e.Message}");
            return;
        }

        using (file)
        {
            // finit_module(fd, "", 0): no parameters, no MODULE_INIT_* flags. The u8 literal lives
            // in the binary's read-only data, so the pointer stays valid for the call.
            nint result;
            fixed (byte* noParameters = "\0"u8)
            {
                result = Libc.syscall(LibcConstants.SYS_finit_module, file.DangerousGetHandle(), (nint)noParameters, 0);
            }

            if (result != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno != Errno.EEXIST)
                {
                    GuestLog.Error($"module {path}: finit_module: {NativeCallException.Describe(errno)}");
                }
            }
        }
    }
}
