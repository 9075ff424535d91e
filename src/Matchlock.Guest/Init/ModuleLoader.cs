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

    /// <summary>The modules a VFS mount needs (fuse; CONTRACTS), kept open at boot and loaded at the first <c>vfs_mount</c>.</summary>
    internal const string VfsListPath = "/etc/matchlock/modules.vfs";

    internal static void LoadListed(string listPath = ListPath)
    {
        if (!File.Exists(listPath))
        {
            GuestLog.Warn($"no module list at {listPath}; assuming a kernel with the drivers built in");
            return;
        }

        foreach (var path in Listed(listPath))
        {
            Load(path);
        }
    }

    /// <summary>
    /// Opens the modules listed in <paramref name="listPath"/> without loading them, so they can be
    /// loaded after the initramfs is freed: an open file of a deleted ramfs file keeps its pages.
    /// Costs the modules' size in RAM until they are loaded (fuse.ko: ~400 KB). Files that cannot be
    /// opened are logged and left out.
    /// </summary>
    internal static IReadOnlyList<RetainedModule> Retain(string listPath)
    {
        if (!File.Exists(listPath))
        {
            return [];
        }

        var retained = new List<RetainedModule>();
        foreach (var path in Listed(listPath))
        {
            try
            {
                retained.Add(new RetainedModule(path, FileDescriptors.Open(path, LibcConstants.O_RDONLY)));
            }
            catch (NativeCallException e)
            {
                GuestLog.Error($"module {path}: {e.Message}");
            }
        }

        return retained;
    }

    private static IEnumerable<string> Listed(string listPath) =>
        File.ReadAllLines(listPath).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'));

    private static void Load(string path)
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
            var errno = KernelModules.Load(file);
            if (errno is not 0 and not Errno.EEXIST)
            {
                GuestLog.Error($"module {path}: finit_module: {NativeCallException.Describe(errno)}");
            }
        }
    }
}
