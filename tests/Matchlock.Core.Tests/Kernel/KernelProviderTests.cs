using Matchlock.Core.Kernel;

namespace Matchlock.Core.Tests.Kernel;

public sealed class KernelProviderTests : IDisposable
{
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("ml-kernel-");

    private string Boot => Path.Combine(_root.FullName, "boot");

    private string Modules => Path.Combine(_root.FullName, "modules");

    public void Dispose() => _root.Delete(recursive: true);

    private void Install(string version, bool withModules = true)
    {
        Directory.CreateDirectory(Boot);
        File.WriteAllText(Path.Combine(Boot, $"vmlinuz-{version}"), "k");
        if (withModules)
        {
            Directory.CreateDirectory(Path.Combine(Modules, version));
            File.WriteAllText(Path.Combine(Modules, version, "modules.dep"), "");
        }
    }

    private KernelProvider Provider(Dictionary<string, string>? env = null) =>
        new(Boot, Modules, name => env is not null && env.TryGetValue(name, out var v) ? v : null);

    [Fact]
    public void Picks_the_newest_cloud_kernel_over_others()
    {
        Install("6.1.0-9-cloud-amd64");
        Install("6.1.0-56-cloud-amd64");
        Install("7.0.0-1-amd64");
        var k = Provider().Find();
        Assert.Equal("6.1.0-56-cloud-amd64", k.Version);
        Assert.Equal(Path.Combine(Boot, "vmlinuz-6.1.0-56-cloud-amd64"), k.KernelPath);
        Assert.Equal(Path.Combine(Modules, "6.1.0-56-cloud-amd64"), k.ModulesDir);
    }

    [Fact]
    public void Falls_back_to_any_kernel()
    {
        Install("6.1.0-9-amd64");
        Assert.Equal("6.1.0-9-amd64", Provider().Find().Version);
    }

    [Fact]
    public void Environment_overrides_kernel_and_modules()
    {
        Install("6.1.0-56-cloud-amd64");
        var custom = Path.Combine(_root.FullName, "bzImage");
        File.WriteAllText(custom, "k");
        var mods = Path.Combine(_root.FullName, "mymods", "6.9-custom");
        Directory.CreateDirectory(mods);
        File.WriteAllText(Path.Combine(mods, "modules.dep"), "");
        var k = Provider(new() { ["MATCHLOCK_KERNEL"] = custom, ["MATCHLOCK_MODULES_DIR"] = mods }).Find();
        Assert.Equal(custom, k.KernelPath);
        Assert.Equal(mods, k.ModulesDir);
        Assert.Equal("6.9-custom", k.Version);
    }

    [Fact]
    public void Missing_kernel_says_how_to_fix_it()
    {
        var ex = Assert.Throws<KernelNotFoundException>(() => Provider().Find());
        Assert.Equal(
            "no guest kernel found in /boot (looked for vmlinuz-*-cloud-amd64); run ./setup.sh to install linux-image-cloud-amd64",
            ex.Message);
    }

    [Fact]
    public void Missing_modules_dir_is_reported()
    {
        Install("6.1.0-56-cloud-amd64", withModules: false);
        var ex = Assert.Throws<KernelNotFoundException>(() => Provider().Find());
        Assert.Contains("modules.dep", ex.Message, StringComparison.Ordinal);
    }
}
