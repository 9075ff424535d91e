using System.Text;
using Matchlock.Core.Images;
using Matchlock.Core.Interop;
using Matchlock.Core.Tests.Images;
using Matchlock.Core;

namespace Matchlock.Integration.Tests.Images;

/// <summary>Layer application semantics and, above all, that no layer can touch anything outside the root.</summary>
public sealed class LayerFlattenerTests : IDisposable
{
    private readonly TempDir _temp = new();
    private readonly string _root;
    private readonly string _outside;

    public LayerFlattenerTests()
    {
        _root = _temp.Combine("root");
        _outside = _temp.Combine("outside");
        Directory.CreateDirectory(_root);
        Directory.CreateDirectory(_outside);
        File.WriteAllText(Path.Combine(_outside, "sentinel"), "untouched");
    }

    public void Dispose() => _temp.Dispose();

    private async Task<LayerFlattener> ApplyAsync(params byte[][] layers)
    {
        var flattener = new LayerFlattener(_root);
        for (var i = 0; i < layers.Length; i++)
        {
            using var stream = new MemoryStream(layers[i]);
            await flattener.ApplyLayerAsync(stream, $"layer {i + 1} (sha256:test)", TestContext.Current.CancellationToken);
        }

        flattener.Finish();
        return flattener;
    }

    private string At(string path) => Path.Combine(_root, path);

    [Fact]
    public async Task Whiteout_removes_the_lower_layer_entry()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        await ApplyAsync(
            new TestTar().Dir("etc").File("etc/keep", "k").File("etc/gone", "g").Dir("etc/gonedir").File("etc/gonedir/x", "x").ToArray(),
            new TestTar().Whiteout("etc/.wh.gone").Whiteout("etc/.wh.gonedir").Whiteout("etc/.wh.never-existed").ToArray());

        Assert.True(File.Exists(At("etc/keep")));
        Assert.False(File.Exists(At("etc/gone")));
        Assert.False(Directory.Exists(At("etc/gonedir")));
        Assert.False(File.Exists(At("etc/.wh.gone")));
    }

    [Fact]
    public async Task Opaque_directory_drops_lower_content_but_keeps_its_own_layer_entries()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        await ApplyAsync(
            new TestTar().Dir("d").File("d/old", "o").Dir("d/sub").File("d/sub/old", "o").File("other", "x").ToArray(),
            // The marker comes after some of this layer's entries on purpose: order must not matter.
            new TestTar().Dir("d").File("d/new", "n").Dir("d/sub").File("d/sub/new", "n").Whiteout("d/.wh..wh..opq").File("d/later", "l").ToArray());

        Assert.Equal(["later", "new", "sub"], Directory.GetFileSystemEntries(At("d")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(["new"], Directory.GetFileSystemEntries(At("d/sub")).Select(Path.GetFileName));
        Assert.True(File.Exists(At("other")));
    }

    [Fact]
    public async Task Hard_link_shares_the_inode_of_an_earlier_entry()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        await ApplyAsync(new TestTar().Dir("bin").File("bin/busybox", "elf").HardLink("bin/sh", "./bin/busybox").ToArray());

        File.AppendAllText(At("bin/busybox"), "+");
        Assert.Equal("elf+", File.ReadAllText(At("bin/sh")));
    }

    [Fact]
    public async Task Symlinks_are_stored_verbatim_even_when_they_point_outside()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        await ApplyAsync(new TestTar().Symlink("abs", "/etc/passwd").Symlink("rel", "../../../outside").ToArray());

        Assert.Equal("/etc/passwd", new FileInfo(At("abs")).LinkTarget);
        Assert.Equal("../../../outside", new FileInfo(At("rel")).LinkTarget);
    }

    [Fact]
    public async Task Modes_ownership_and_mtimes_are_kept()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        var fileTime = new DateTimeOffset(2001, 2, 3, 4, 5, 6, TimeSpan.Zero);
        var dirTime = new DateTimeOffset(2002, 2, 3, 4, 5, 6, TimeSpan.Zero);
        await ApplyAsync(new TestTar()
            .Dir("tmp", mode: 0x3FF /* 01777 */, mtime: dirTime)
            .Dir("home/user", uid: 1000, gid: 1000, mode: 0x1C0 /* 0700 */)
            .File("bin/su", "x", mode: 0x9ED /* 04755 */, mtime: fileTime)
            .File("home/user/f", "x", uid: 1000, gid: 1001, mode: 0x1A0 /* 0640 */)
            .Symlink("home/user/link", "f", uid: 1000, gid: 1000)
            .ToArray());

        Assert.Equal((UnixFileMode)0x3FF, File.GetUnixFileMode(At("tmp")));
        Assert.Equal((UnixFileMode)0x9ED, File.GetUnixFileMode(At("bin/su")));
        Assert.Equal((UnixFileMode)0x1A0, File.GetUnixFileMode(At("home/user/f")));
        Assert.Equal(fileTime, File.GetLastWriteTimeUtc(At("bin/su")));
        Assert.Equal(dirTime, Directory.GetLastWriteTimeUtc(At("tmp")));
        Assert.Equal(DateTime.UnixEpoch, Directory.GetLastWriteTimeUtc(At("bin"))); // implicit parent: reproducible time
        Assert.Equal("1000:1000", await StatOwnerAsync(At("home/user")));
        Assert.Equal("1000:1001", await StatOwnerAsync(At("home/user/f")));
        Assert.Equal("1000:1000", await StatOwnerAsync(At("home/user/link")));
    }

    [Fact]
    public async Task Pax_xattrs_are_set_on_the_entry()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        var pax = new Dictionary<string, string> { ["SCHILY.xattr.user.matchlock"] = "hello" };
        try
        {
            await ApplyAsync(new TestTar().File("f", "x", pax: pax).ToArray());
        }
        catch (ImageStoreException e) when (e.Message.Contains("does not support", StringComparison.Ordinal))
        {
            Assert.Skip($"the temp filesystem has no user xattrs: {e.Message}");
        }

        Assert.Equal("hello", Encoding.UTF8.GetString(LinuxNative.LGetXattr(At("f"), "user.matchlock")!));
    }

    [Fact]
    public async Task Later_layer_replaces_an_entry_of_another_type()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        await ApplyAsync(
            new TestTar().Dir("a").File("a/inner", "x").File("b", "file").Symlink("c", "/").ToArray(),
            new TestTar().File("a", "now a file").Dir("b").File("b/inner", "y").Dir("c").File("c/x", "z").ToArray());

        Assert.Equal("now a file", File.ReadAllText(At("a")));
        Assert.Equal("y", File.ReadAllText(At("b/inner")));
        Assert.Equal(NodeKind.Directory, FileTree.Lstat(At("c")));
        Assert.Equal("z", File.ReadAllText(At("c/x")));
    }

    [Fact]
    public async Task Fifo_is_created()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        await ApplyAsync(new TestTar().Fifo("run/pipe").ToArray());

        Assert.Equal(NodeKind.Other, FileTree.Lstat(At("run/pipe")));
        Assert.Equal("fifo", (await RunAsync("stat", "-c", "%F", At("run/pipe"))).Trim().Split(' ')[^1]);
    }

    [Fact]
    public async Task Character_device_is_refused_naming_the_path()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        var e = await Assert.ThrowsAsync<ImageFormatException>(() => ApplyAsync(new TestTar().CharDevice("dev/null").ToArray()));

        Assert.Contains("layer 1", e.Message, StringComparison.Ordinal);
        Assert.Contains("\"dev/null\"", e.Message, StringComparison.Ordinal);
        Assert.Contains("device", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bare_slash_entry_is_the_root_itself_as_umoci_writes_it()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        await ApplyAsync(new TestTar().Dir("/", mode: 0x1C0 /* 0700 */).Dir("etc").File("etc/x", "y").ToArray());
        Assert.Equal("y", await File.ReadAllTextAsync(At("etc/x"), TestContext.Current.CancellationToken));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_root));
    }

    public static TheoryData<string, byte[][]> EscapeAttempts() => new()
    {
        { "dot-dot", [new TestTar().File("../sentinel-new", "x").ToArray()] },
        { "dot-dot inside", [new TestTar().File("a/../../sentinel-new", "x").ToArray()] },
        { "absolute", [new TestTar().File("/etc/matchlock-test-escape", "x").ToArray()] },
        { "symlink to / then write through it", [new TestTar().Symlink("evil", "/").File("evil/etc/passwd", "x").ToArray()] },
        { "symlink to .. then write through it", [new TestTar().Symlink("up", "..").File("up/outside/sentinel", "x").ToArray()] },
        { "symlink planted by a lower layer", [new TestTar().Symlink("up", "../outside").ToArray(), new TestTar().File("up/sentinel", "x").ToArray()] },
        { "directory entry through a symlink", [new TestTar().Symlink("up", "../outside").Dir("up/newdir").ToArray()] },
        { "hard link escaping", [new TestTar().HardLink("x", "../../outside/sentinel").ToArray()] },
        { "hard link through a symlink", [new TestTar().Symlink("up", "../outside").HardLink("x", "up/sentinel").ToArray()] },
        { "whiteout escaping", [new TestTar().Whiteout("../.wh.outside").ToArray()] },
        { "whiteout through a symlink", [new TestTar().Symlink("up", "../outside").Whiteout("up/.wh.sentinel").ToArray()] },
        { "opaque marker through a symlink", [new TestTar().Symlink("up", "../outside").Whiteout("up/.wh..wh..opq").ToArray()] },
        { "whiteout naming ..", [new TestTar().Whiteout("d/.wh...").ToArray()] },
    };

    [Theory]
    [MemberData(nameof(EscapeAttempts))]
    public async Task Entries_that_escape_the_root_are_refused_and_nothing_outside_changes(string attempt, byte[][] layers)
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        var before = Snapshot(_temp.Path);

        var e = await Assert.ThrowsAsync<ImageFormatException>(() => ApplyAsync(layers));

        Assert.Contains("layer ", e.Message, StringComparison.Ordinal);
        Assert.Contains("refusing", e.Message + attempt, StringComparison.Ordinal);
        Assert.Equal("untouched", File.ReadAllText(Path.Combine(_outside, "sentinel")));
        Assert.Equal(before.Where(p => !p.StartsWith("root", StringComparison.Ordinal)),
            Snapshot(_temp.Path).Where(p => !p.StartsWith("root", StringComparison.Ordinal)));
        Assert.False(File.Exists("/etc/matchlock-test-escape"));
    }

    [Fact]
    public async Task Escape_error_names_the_layer_and_the_entry()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        var e = await Assert.ThrowsAsync<ImageFormatException>(() => ApplyAsync(
            new TestTar().Dir("etc").ToArray(), new TestTar().File("../etc/passwd", "x").ToArray()));

        Assert.Equal("layer 2 (sha256:test): entry \"../etc/passwd\" escapes the image root; refusing to import", e.Message);
    }

    [Fact]
    public async Task Corrupt_tar_is_an_image_format_error()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        var tar = new TestTar().File("a", new string('x', 5000)).ToArray();
        tar[100] ^= 0x55; // inside the first header: breaks its checksum

        await Assert.ThrowsAsync<ImageFormatException>(() => ApplyAsync(tar));
    }

    [Fact]
    public async Task Truncated_tar_is_an_image_format_error()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        var tar = new TestTar().File("a", new string('x', 5000)).ToArray();

        await Assert.ThrowsAsync<ImageFormatException>(() => ApplyAsync(tar[..2000]));
    }

    /// <summary>Every path under <paramref name="dir"/>, walking with lstat: symlinks (e.g. "up -> ..") are listed, never entered.</summary>
    private static List<string> Snapshot(string dir)
    {
        var paths = new List<string>();
        void Walk(string current)
        {
            foreach (var child in Directory.EnumerateFileSystemEntries(current))
            {
                paths.Add(Path.GetRelativePath(dir, child));
                if (FileTree.Lstat(child) == NodeKind.Directory)
                {
                    Walk(child);
                }
            }
        }

        Walk(dir);
        paths.Sort(StringComparer.Ordinal);
        return paths;
    }

    private static async Task<string> StatOwnerAsync(string path) => (await RunAsync("stat", "-c", "%u:%g", path)).Trim();

    private static async Task<string> RunAsync(string program, params string[] args)
    {
        var result = await ProcessRunner.RunAsync(program, args, null, TestContext.Current.CancellationToken);
        Assert.True(result.ExitCode == 0, result.StandardError);
        return result.StandardOutput;
    }
}
