namespace Matchlock.Core.Kernel;

/// <summary>
/// Finds the guest kernel (docs/ARCHITECTURE.md D3: Debian's <c>linux-image-cloud-amd64</c>). All kernel
/// discovery lives here so a tuned kernel can replace it later without touching callers.
/// </summary>
/// <remarks>
/// Order: <c>MATCHLOCK_KERNEL</c> (a bzImage/vmlinuz path), else the newest
/// <c>/boot/vmlinuz-*-cloud-amd64</c>, else the newest <c>/boot/vmlinuz-*</c>. The modules dir is
/// <c>MATCHLOCK_MODULES_DIR</c>, else <c>/lib/modules/&lt;version&gt;</c>.
/// </remarks>
public sealed class KernelProvider
{
    public const string KernelEnvVar = "MATCHLOCK_KERNEL";
    public const string ModulesDirEnvVar = "MATCHLOCK_MODULES_DIR";

    private readonly string _bootDir;
    private readonly string _modulesRoot;
    private readonly Func<string, string?> _getEnv;

    public KernelProvider()
        : this("/boot", "/lib/modules", Environment.GetEnvironmentVariable)
    {
    }

    /// <summary>For tests and unusual layouts: explicit roots and environment.</summary>
    public KernelProvider(string bootDir, string modulesRoot, Func<string, string?> getEnv)
    {
        ArgumentNullException.ThrowIfNull(getEnv);
        _bootDir = bootDir;
        _modulesRoot = modulesRoot;
        _getEnv = getEnv;
    }

    /// <exception cref="KernelNotFoundException">No kernel, or no modules directory for it.</exception>
    public GuestKernel Find()
    {
        string kernelPath;
        string? version;
        var fromEnv = _getEnv(KernelEnvVar);
        if (!string.IsNullOrEmpty(fromEnv))
        {
            if (!File.Exists(fromEnv))
            {
                throw new KernelNotFoundException($"{KernelEnvVar}={fromEnv}: no such file; point it at a bzImage/vmlinuz or unset it");
            }

            kernelPath = Path.GetFullPath(fromEnv);
            version = VersionFromFileName(Path.GetFileName(kernelPath));
        }
        else
        {
            kernelPath = Newest("vmlinuz-*-cloud-amd64") ?? Newest("vmlinuz-*")
                ?? throw new KernelNotFoundException();
            version = VersionFromFileName(Path.GetFileName(kernelPath));
        }

        var modulesDir = _getEnv(ModulesDirEnvVar);
        if (string.IsNullOrEmpty(modulesDir))
        {
            if (version is null)
            {
                throw new KernelNotFoundException(
                    $"cannot tell the version of kernel {kernelPath} from its name (expected vmlinuz-<version>); set {ModulesDirEnvVar}=/lib/modules/<version>");
            }

            modulesDir = Path.Combine(_modulesRoot, version);
        }

        if (!File.Exists(Path.Combine(modulesDir, "modules.dep")))
        {
            throw new KernelNotFoundException(
                $"no modules.dep in {modulesDir} for kernel {kernelPath}; install the matching linux-image package or set {ModulesDirEnvVar}");
        }

        // The modules dir name is the authoritative release string (it is what the kernel itself
        // uses for /lib/modules/$(uname -r)); fall back to it when the kernel file name is custom.
        version = Path.GetFileName(Path.TrimEndingDirectorySeparator(modulesDir));
        return new GuestKernel(kernelPath, Path.GetFullPath(modulesDir), version);
    }

    private string? Newest(string pattern)
    {
        if (!Directory.Exists(_bootDir))
        {
            return null;
        }

        return Directory.EnumerateFiles(_bootDir, pattern)
            .Select(p => (Path: p, Version: VersionFromFileName(Path.GetFileName(p)) ?? ""))
            .OrderByDescending(x => x.Version, KernelVersionComparer.Instance)
            .Select(x => x.Path)
            .FirstOrDefault();
    }

    private static string? VersionFromFileName(string fileName) =>
        fileName.StartsWith("vmlinuz-", StringComparison.Ordinal) && fileName.Length > "vmlinuz-".Length
            ? fileName["vmlinuz-".Length..]
            : null;
}
