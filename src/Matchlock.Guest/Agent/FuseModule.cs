using Matchlock.Guest.Diagnostics;
using Matchlock.Guest.Interop;

namespace Matchlock.Guest.Agent;

/// <summary>
/// Makes sure the kernel has the <c>fuse</c> (or <c>virtiofs</c>) filesystem, at the first <c>vfs_mount</c> rather
/// than at boot (module loading is boot time every VM would pay; most have no VFS). The module
/// files come from the initramfs, which is freed before the agent serves, so the boot keeps them
/// open (<see cref="RetainedModule"/>) and this loads them through those descriptors. A kernel
/// with fuse built in (or already loaded) needs nothing.
/// </summary>
internal sealed class FuseModule
{
    private readonly Lock _gate = new(); // guards _modules and _loaded: one load, the others wait for it
    private readonly string _filesystems;
    private IReadOnlyList<RetainedModule> _modules;
    private bool _loaded;

    /// <param name="modules">The VFS modules in load order (dependencies first); owned, closed once loaded.</param>
    /// <param name="filesystems">Where the kernel lists its filesystems.</param>
    internal FuseModule(IReadOnlyList<RetainedModule> modules, string filesystems = "/proc/filesystems")
    {
        _modules = modules;
        _filesystems = filesystems;
    }

    /// <summary>None kept: only a kernel that has fuse already can mount (tests, and a guest whose initramfs lacks it).</summary>
    internal static FuseModule None { get; } = new([]);

    /// <summary>Null when the <paramref name="filesystem"/> filesystem (fuse, or virtiofs) is available, else why not.</summary>
    internal string? EnsureAvailable(string filesystem = "fuse")
    {
        lock (_gate)
        {
            if (HasFilesystem(filesystem))
            {
                return null;
            }

            if (_loaded)
            {
                return $"the guest kernel has no {filesystem} filesystem (the VFS modules are loaded)";
            }

            var failures = new List<string>();
            foreach (var module in _modules)
            {
                using (module.File)
                {
                    var errno = KernelModules.Load(module.File);
                    if (errno is not 0 and not Errno.EEXIST)
                    {
                        failures.Add($"{module.Path}: finit_module: {NativeCallException.Describe(errno)}");
                    }
                }
            }

            var tried = _modules.Count;
            _modules = []; // each file is loaded once; a failure will not get better on a retry
            _loaded = true;
            if (HasFilesystem(filesystem))
            {
                GuestLog.Info($"loaded the VFS modules for {filesystem}");
                return null;
            }

            return tried == 0
                ? $"the guest kernel has no {filesystem} filesystem (not built in, and the initramfs brought no module for it)"
                : $"loading {filesystem} failed: {(failures.Count == 0 ? $"the modules loaded but registered no {filesystem} filesystem" : string.Join("; ", failures))}";
        }
    }

    /// <summary>True when /proc/filesystems lists <paramref name="name"/> (lines are "nodev\tfuse").</summary>
    private bool HasFilesystem(string name)
    {
        try
        {
            return File.ReadLines(_filesystems).Any(line => line.Split('\t', StringSplitOptions.TrimEntries).LastOrDefault() == name);
        }
        catch (IOException)
        {
            return false;
        }
    }
}
