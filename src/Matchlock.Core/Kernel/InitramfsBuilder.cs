using System.Security.Cryptography;
using System.Text;

namespace Matchlock.Core.Kernel;

/// <summary>
/// Builds (once per kernel + guest binary + module set) the initramfs every VM boots, in the
/// layout fixed by docs/CONTRACTS.md: <c>/init</c> = guest binary (0755),
/// <c>/lib/modules/&lt;kver&gt;/&lt;path&gt;</c>, <c>/etc/matchlock/modules</c> (absolute paths,
/// load order), <c>/etc/matchlock/modules.net</c> (the extra modules a NIC needs, loaded by the
/// guest only when it has one), <c>/etc/matchlock/modules.vfs</c> (fuse, loaded by the guest at its
/// first VFS mount). Also <c>/dev/console</c> (5,1) so PID 1 starts with stdio on the serial console
/// before it mounts devtmpfs (docs/PLATFORM.md "Guest kernel": devtmpfs is built in but not auto-mounted).
/// </summary>
/// <remarks>
/// Cached at <c>&lt;cacheDir&gt;/kernel/&lt;kver&gt;-&lt;hash&gt;/initramfs.cpio</c>; the hash
/// covers the builder version, the guest binary bytes and the module list and bytes, so any
/// change builds a new file. Uncompressed on purpose: gz/lz4 bring no gain (docs/PLATFORM.md "Boot").
/// </remarks>
public sealed class InitramfsBuilder
{
    /// <summary>Bump when the archive layout changes, so cached archives are rebuilt.</summary>
    internal const string BuilderVersion = "matchlock-initramfs-5"; // 2: module signatures stripped; 3: modules.net; 4: modules.vfs; 5: virtiofs in modules.vfs

    private readonly GuestKernel _kernel;
    private readonly string _cacheDir;
    private readonly IReadOnlyList<string> _modules;

    /// <summary>Caches under <see cref="MatchlockPaths.CacheDir"/>.</summary>
    public InitramfsBuilder(GuestKernel kernel, IReadOnlyList<string>? modules = null)
        : this(kernel, MatchlockPaths.CacheDir, modules)
    {
    }

    /// <param name="kernel">From <see cref="KernelProvider.Find"/>.</param>
    /// <param name="cacheDir">Matchlock's cache root (e.g. <c>~/.cache/matchlock</c>); archives go under <c>kernel/</c>.</param>
    /// <param name="modules">Module names to include with their dependencies; default <see cref="ModuleResolver.DefaultModules"/>.</param>
    public InitramfsBuilder(GuestKernel kernel, string cacheDir, IReadOnlyList<string>? modules = null)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentException.ThrowIfNullOrEmpty(cacheDir);
        _kernel = kernel;
        _cacheDir = cacheDir;
        _modules = modules ?? ModuleResolver.DefaultModules;
    }

    /// <summary>Returns the cached archive for this guest binary, building it first if needed.</summary>
    /// <exception cref="FileNotFoundException">The guest binary does not exist.</exception>
    /// <exception cref="ModuleResolutionException">A module cannot be provided by this kernel.</exception>
    public async Task<BootArtifacts> GetOrBuildAsync(string guestBinaryPath, CancellationToken cancellationToken)
    {
        if (!File.Exists(guestBinaryPath))
        {
            throw new FileNotFoundException(
                $"guest binary {guestBinaryPath} not found; build src/Matchlock.Guest or set MATCHLOCK_GUEST_BIN", guestBinaryPath);
        }

        var resolver = ModuleResolver.Load(_kernel.ModulesDir);
        var bootPaths = resolver.Resolve(_modules);

        // The NIC's modules minus what boot loads anyway; both lists in one archive, boot first.
        // A kernel without them still boots VMs without a NIC; a VM with one then fails its
        // configure step with "no eth0", which names the problem.
        var netPaths = OptionalModules(resolver, ModuleResolver.NetworkModules, bootPaths);
        // Likewise fuse: without it, VMs without VFS mounts boot as before and a vfs_mount fails
        // naming the missing module.
        var vfsPaths = OptionalModules(resolver, ModuleResolver.VfsModules, [.. bootPaths, .. netPaths]);

        var modulePaths = bootPaths.Concat(netPaths).Concat(vfsPaths).ToList();
        int[] listSizes = [bootPaths.Count, netPaths.Count, vfsPaths.Count];
        var guest = await File.ReadAllBytesAsync(guestBinaryPath, cancellationToken);
        var moduleBytes = new List<byte[]>(modulePaths.Count);
        foreach (var rel in modulePaths)
        {
            moduleBytes.Add(await File.ReadAllBytesAsync(Path.Combine(_kernel.ModulesDir, rel), cancellationToken));
        }

        var hash = Hash(guest, modulePaths, moduleBytes, listSizes);
        var dir = Path.Combine(_cacheDir, "kernel", $"{_kernel.Version}-{hash}");
        var final = Path.Combine(dir, "initramfs.cpio");
        if (File.Exists(final))
        {
            return new BootArtifacts(_kernel.KernelPath, final, _kernel.Version);
        }

        Directory.CreateDirectory(dir);

        // Two processes may build at once: each writes its own temp file and renames it over the
        // final name. rename(2) is atomic and both produce the same bytes, so a reader sees
        // either no file or a complete one, never a partial archive.
        var tmp = Path.Combine(dir, $"initramfs.cpio.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            await using (var file = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            {
                await WriteArchiveAsync(file, guest, modulePaths, moduleBytes, listSizes, cancellationToken);
                file.Flush(flushToDisk: true);
            }

            File.Move(tmp, final, overwrite: true);
        }
        finally
        {
            // Only ours: after a successful move it no longer exists.
            File.Delete(tmp);
        }

        return new BootArtifacts(_kernel.KernelPath, final, _kernel.Version);
    }

    private async Task WriteArchiveAsync(
        Stream output, byte[] guest, IReadOnlyList<string> modulePaths, IReadOnlyList<byte[]> moduleBytes, int[] listSizes, CancellationToken cancellationToken)
    {
        await using var cpio = new CpioWriter(output, leaveOpen: true);
        foreach (var d in new[] { "dev", "proc", "sys", "run", "tmp", "etc/matchlock" })
        {
            await cpio.AddDirectoryAsync(d, d == "tmp" ? 0x3FF /* 1777 */ : 0x1ED /* 0755 */, cancellationToken);
        }

        await cpio.AddCharDeviceAsync("dev/console", 0x180 /* 0600 */, major: 5, minor: 1, cancellationToken);
        await cpio.AddFileAsync("init", guest, 0x1ED, cancellationToken);

        // modulePaths holds the lists back to back, in this order.
        string[] listNames = ["etc/matchlock/modules", "etc/matchlock/modules.net", "etc/matchlock/modules.vfs"];
        var next = 0;
        for (var l = 0; l < listNames.Length; l++)
        {
            var list = new StringBuilder();
            for (var i = next; i < next + listSizes[l]; i++)
            {
                var inArchive = $"lib/modules/{_kernel.Version}/{modulePaths[i]}";
                await cpio.AddFileAsync(inArchive, ModuleSignature.Strip(moduleBytes[i]), 0x1A4 /* 0644 */, cancellationToken);
                list.Append('/').Append(inArchive).Append('\n');
            }

            next += listSizes[l];
            await cpio.AddFileAsync(listNames[l], Encoding.UTF8.GetBytes(list.ToString()), 0x1A4, cancellationToken);
        }
        await cpio.FinishAsync(cancellationToken);
    }

    /// <summary>The optional modules of <paramref name="names"/> not already in <paramref name="packed"/>; none when this kernel cannot provide them.</summary>
    private static List<string> OptionalModules(ModuleResolver resolver, IReadOnlyList<string> names, IReadOnlyList<string> packed)
    {
        try
        {
            return resolver.Resolve(names).Except(packed, StringComparer.Ordinal).ToList();
        }
        catch (ModuleResolutionException)
        {
            return [];
        }
    }

    private string Hash(byte[] guest, IReadOnlyList<string> modulePaths, IReadOnlyList<byte[]> moduleBytes, int[] listSizes)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        h.AppendData(Encoding.UTF8.GetBytes($"{BuilderVersion}\n{_kernel.Version}\nlists {string.Join(' ', listSizes)}\n"));
        for (var i = 0; i < modulePaths.Count; i++)
        {
            h.AppendData(Encoding.UTF8.GetBytes($"{modulePaths[i]}\n{moduleBytes[i].Length}\n"));
            h.AppendData(moduleBytes[i]);
        }

        h.AppendData(Encoding.UTF8.GetBytes($"guest\n{guest.Length}\n"));
        h.AppendData(guest);
        return Convert.ToHexStringLower(h.GetHashAndReset())[..16];
    }
}
