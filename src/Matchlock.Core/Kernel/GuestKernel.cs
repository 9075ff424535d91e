namespace Matchlock.Core.Kernel;

/// <summary>A guest kernel image and the modules tree built for it.</summary>
/// <param name="KernelPath">bzImage/vmlinuz that QEMU boots directly with <c>-kernel</c>.</param>
/// <param name="ModulesDir"><c>/lib/modules/&lt;Version&gt;</c> (contains <c>modules.dep</c>).</param>
/// <param name="Version">Kernel release string, e.g. <c>6.1.0-56-cloud-amd64</c>.</param>
public sealed record GuestKernel(string KernelPath, string ModulesDir, string Version);
