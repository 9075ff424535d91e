using Matchlock.Guest.Processes;
using Matchlock.Guest.Users;

namespace Matchlock.Guest.Tests;

public sealed class ExecutableResolverTests
{
    private static readonly ExecUser App = new(1000, 1000, [10], "/home/app", "app");

    private static readonly Dictionary<string, FileProbe> Files = new()
    {
        ["/usr/bin/tool"] = new(false, true, 0b111_101_101, 0, 0),
        ["/usr/local/bin/tool"] = new(false, true, 0b110_100_100, 0, 0),       // no x bit at all
        ["/opt/bin/secret"] = new(false, true, 0b111_000_000, 0, 0),          // root only
        ["/opt/bin/grouped"] = new(false, true, 0b111_001_000, 0, 10),        // group 10 may run it
        ["/bin/dir"] = new(true, false, 0b111_101_101, 0, 0),
        ["/work/run.sh"] = new(false, true, 0b111_101_101, 1000, 1000),
    };

    private static readonly ExecutableResolver Resolver = new(path => Files.TryGetValue(Path.GetFullPath(path), out var p) ? p : null);

    [Fact]
    public void Searches_the_requested_path_in_order_and_skips_non_executables()
    {
        var result = Resolver.Resolve("tool", "/usr/local/bin:/usr/bin", "/", ExecUser.Root);
        Assert.Equal("/usr/bin/tool", result.Path);
    }

    [Fact]
    public void Not_found_is_127()
    {
        var result = Resolver.Resolve("nope", "/usr/bin", "/", ExecUser.Root);
        Assert.Equal((null, 127, "exec: nope: not found"), (result.Path, result.ExitCode, result.Error));
    }

    [Fact]
    public void Found_but_not_executable_is_126()
    {
        var result = Resolver.Resolve("tool", "/usr/local/bin", "/", ExecUser.Root);
        Assert.Equal((126, "exec: tool: permission denied"), (result.ExitCode, result.Error));
    }

    [Fact]
    public void Permissions_are_checked_for_the_target_user_not_for_root()
    {
        Assert.NotNull(Resolver.Resolve("secret", "/opt/bin", "/", ExecUser.Root).Path);
        Assert.Equal(126, Resolver.Resolve("secret", "/opt/bin", "/", App).ExitCode);
        Assert.NotNull(Resolver.Resolve("grouped", "/opt/bin", "/", App).Path);
    }

    [Fact]
    public void Names_with_a_slash_are_taken_relative_to_the_working_directory()
    {
        Assert.Equal("./run.sh", Resolver.Resolve("./run.sh", "/usr/bin", "/work", App).Path);
        Assert.Equal(127, Resolver.Resolve("./run.sh", "/usr/bin", "/", App).ExitCode);
        Assert.Equal("exec: /bin/dir: is a directory", Resolver.Resolve("/bin/dir", null, "/", App).Error);
    }

    [Fact]
    public void Empty_path_entry_means_the_working_directory()
    {
        Assert.Equal("run.sh", Resolver.Resolve("run.sh", "/usr/bin:", "/work", App).Path);
    }

    [Fact]
    public void Missing_path_uses_dockers_default()
    {
        Assert.Equal("/usr/bin/tool", Resolver.Resolve("tool", null, "/", App).Path);
    }
}
