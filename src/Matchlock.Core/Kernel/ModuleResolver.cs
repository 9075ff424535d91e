namespace Matchlock.Core.Kernel;

/// <summary>
/// Turns module names into the <c>.ko</c> files to put in the initramfs, dependencies first
/// (CONTRACTS: <c>/etc/matchlock/modules</c> is in load order; the guest uses <c>finit_module</c>,
/// which resolves no dependencies itself).
/// </summary>
/// <remarks>
/// <c>modules.dep</c> lines are <c>path: dep1 dep2 …</c>; depmod lists the full closure, with the
/// modules to load first at the end (modprobe walks it backwards). We do not rely on that order:
/// a depth-first topological sort over the listed edges gives deps-before-users for any valid
/// file, and detects cycles. Names compare with <c>-</c> and <c>_</c> equivalent, as kmod does.
/// </remarks>
internal sealed class ModuleResolver
{
    /// <summary>
    /// What the guest needs on microvm (docs/PLATFORM.md "Guest kernel": these are =m in the cloud kernel): virtio-mmio
    /// transport, block (image + upper disk), console (the channel port), erofs + overlay (root,
    /// docs/ARCHITECTURE.md D5), net (D7) and fuse (D10). Each module costs boot time (~0.3 s for all), so
    /// callers that know a VM has no NIC or VFS can pass a smaller set.
    /// </summary>
    public static IReadOnlyList<string> DefaultModules { get; } =
        // Only what every VM uses today: module loading is ~0.1 s of each boot under TCG.
        // virtio_net (sealed network, NetworkModules) and fuse (VFS, VfsModules) are packed apart and loaded on demand.
        ["virtio_mmio", "virtio_blk", "virtio_console", "erofs", "overlay"];

    /// <summary>
    /// Modules for a NIC (docs/ARCHITECTURE.md D7): packed into every initramfs, listed apart in
    /// <c>/etc/matchlock/modules.net</c>, and loaded by the guest only when the VM has a
    /// virtio-net device, so VMs without a network boot as fast as before. net_failover and
    /// failover come in as virtio_net's dependencies.
    /// </summary>
    public static IReadOnlyList<string> NetworkModules { get; } = ["virtio_net"];

    /// <summary>
    /// Modules for VFS mounts (docs/VFS.md): packed into every initramfs, listed apart in
    /// <c>/etc/matchlock/modules.vfs</c>; the guest keeps them open across the root switch and
    /// loads them at its first <c>vfs_mount</c>, so VMs without one pay no boot time for them.
    /// </summary>
    public static IReadOnlyList<string> VfsModules { get; } = ["fuse", "virtiofs"];

    // Normalized module name → relative path, and relative path → its listed dependencies.
    private readonly Dictionary<string, string> _pathByName = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string[]> _depsByPath = new(StringComparer.Ordinal);
    private readonly HashSet<string> _builtin = new(StringComparer.Ordinal);

    private ModuleResolver()
    {
    }

    /// <summary>Reads <c>modules.dep</c> and (if present) <c>modules.builtin</c> from a modules dir.</summary>
    public static ModuleResolver Load(string modulesDir)
    {
        var depPath = Path.Combine(modulesDir, "modules.dep");
        if (!File.Exists(depPath))
        {
            throw new ModuleResolutionException($"{depPath} not found; is {modulesDir} a kernel modules directory?");
        }

        var builtinPath = Path.Combine(modulesDir, "modules.builtin");
        var builtin = File.Exists(builtinPath) ? File.ReadLines(builtinPath) : [];
        return Parse(File.ReadLines(depPath), builtin);
    }

    /// <summary>Builds a resolver from the text of <c>modules.dep</c> and <c>modules.builtin</c>.</summary>
    public static ModuleResolver Parse(IEnumerable<string> modulesDepLines, IEnumerable<string> modulesBuiltinLines)
    {
        ArgumentNullException.ThrowIfNull(modulesDepLines);
        ArgumentNullException.ThrowIfNull(modulesBuiltinLines);
        var r = new ModuleResolver();
        var lineNo = 0;
        foreach (var raw in modulesDepLines)
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                throw new ModuleResolutionException($"modules.dep line {lineNo} is malformed: '{raw}'");
            }

            var path = line[..colon].Trim();
            var deps = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            r._depsByPath[path] = deps;
            r._pathByName.TryAdd(NameOf(path), path);
        }

        foreach (var raw in modulesBuiltinLines)
        {
            var line = raw.Trim();
            if (line.Length > 0)
            {
                r._builtin.Add(NameOf(line));
            }
        }

        return r;
    }

    /// <summary>
    /// Returns the relative paths (as in <c>modules.dep</c>) of the requested modules and all their
    /// dependencies, dependencies first, each once. Built-in modules are skipped.
    /// </summary>
    /// <exception cref="ModuleResolutionException">Unknown module, compressed module, or a cycle.</exception>
    public IReadOnlyList<string> Resolve(IEnumerable<string> moduleNames)
    {
        ArgumentNullException.ThrowIfNull(moduleNames);
        var order = new List<string>();
        var done = new HashSet<string>(StringComparer.Ordinal);
        var visiting = new HashSet<string>(StringComparer.Ordinal);
        foreach (var requested in moduleNames)
        {
            var name = Normalize(requested);
            if (_pathByName.TryGetValue(name, out var path))
            {
                Visit(path, order, done, visiting, requested);
            }
            else if (!_builtin.Contains(name))
            {
                throw new ModuleResolutionException(
                    $"kernel module '{requested}' is neither in modules.dep nor built in; this kernel cannot provide it (choose another kernel or drop the module)");
            }
        }

        return order;
    }

    private void Visit(string path, List<string> order, HashSet<string> done, HashSet<string> visiting, string requestedBy)
    {
        if (done.Contains(path))
        {
            return;
        }

        if (!visiting.Add(path))
        {
            throw new ModuleResolutionException($"modules.dep has a dependency cycle through {path}");
        }

        if (!_depsByPath.TryGetValue(path, out var deps))
        {
            throw new ModuleResolutionException($"'{requestedBy}' depends on {path}, which has no line of its own in modules.dep; the file is inconsistent (rerun depmod)");
        }

        // Walk the listed deps last-to-first: that is depmod's own load order, so when the file is
        // well-formed our output matches what modprobe would do.
        for (var i = deps.Length - 1; i >= 0; i--)
        {
            Visit(deps[i], order, done, visiting, requestedBy);
        }

        if (!path.EndsWith(".ko", StringComparison.Ordinal))
        {
            throw new ModuleResolutionException(
                $"module {path} is compressed; matchlock loads modules with finit_module and supports only uncompressed .ko files (Debian's cloud kernel ships them uncompressed)");
        }

        visiting.Remove(path);
        done.Add(path);
        order.Add(path);
    }

    /// <summary>Module name of a path: file name without <c>.ko[.xz|.zst|.gz]</c>, <c>-</c> as <c>_</c>.</summary>
    internal static string NameOf(string path)
    {
        var file = Path.GetFileName(path);
        var ko = file.IndexOf(".ko", StringComparison.Ordinal);
        return Normalize(ko > 0 ? file[..ko] : file);
    }

    private static string Normalize(string name) => name.Trim().Replace('-', '_');
}
