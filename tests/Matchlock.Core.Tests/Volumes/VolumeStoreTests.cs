using System.Diagnostics;
using Matchlock.Core.Images;
using Matchlock.Core.Interop;
using Matchlock.Core.Tests.Images;
using Matchlock.Core.Volumes;

namespace Matchlock.Core.Tests.Volumes;

/// <summary>
/// Named volumes on the host: real <c>mkfs.ext4</c> on sparse files in a temporary directory,
/// flock-based in-use checks (a lock taken in this process conflicts with another descriptor of
/// it just as another process's would). No VM, no root.
/// </summary>
public sealed class VolumeStoreTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly VolumeStore _store;

    public VolumeStoreTests()
    {
        _store = new VolumeStore(_dir.Combine("volumes"));
    }

    public void Dispose() => _dir.Dispose();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("a", true)]
    [InlineData("data", true)]
    [InlineData("My_Vol-1.2", true)]
    [InlineData("0", true)]
    [InlineData("", false)]
    [InlineData(".hidden", false)]
    [InlineData("-x", false)]
    [InlineData("_x", false)]
    [InlineData("a/b", false)]
    [InlineData("a b", false)]
    [InlineData("a:b", false)]
    [InlineData("data\n", false)]
    [InlineData("é", false)]
    public void Names_follow_the_original_rule(string name, bool valid)
    {
        Assert.Equal(valid, VolumeStore.IsValidName(name));
        Assert.False(VolumeStore.IsValidName(new string('a', 129)));
        Assert.True(VolumeStore.IsValidName(new string('a', 128)));
    }

    [Fact]
    public async Task Create_makes_a_sparse_ext4_image_named_after_the_volume_and_ls_lists_it()
    {
        var volume = await _store.CreateAsync("data", 256, Ct);
        Assert.Equal("data", volume.Name);
        Assert.Equal(_dir.Combine("volumes", "data.ext4"), volume.Path);
        Assert.Equal(256L * 1024 * 1024, volume.SizeBytes);
        Assert.True(volume.UsedBytes < 16L * 1024 * 1024, $"a fresh 256 MB volume occupies {volume.UsedBytes} bytes; it should be sparse");
        Assert.Equal(0, Run("e2fsck", "-fn", volume.Path).ExitCode);

        await _store.CreateAsync("b", 16, Ct);
        Assert.Equal(["b", "data"], _store.List().Select(v => v.Name));
        Assert.Equal(["b.ext4", "data.ext4"], Directory.GetFileSystemEntries(_store.Directory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Create_refuses_an_existing_name_a_bad_name_and_a_bad_size_and_leaves_nothing()
    {
        await _store.CreateAsync("data", 16, Ct);
        var before = File.ReadAllBytes(_store.PathOf("data"));

        var exists = await Assert.ThrowsAsync<VolumeException>(() => _store.CreateAsync("data", 32, Ct));
        Assert.Contains("already exists", exists.Message, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllBytes(_store.PathOf("data")));

        Assert.Contains("invalid volume name", (await Assert.ThrowsAsync<VolumeException>(() => _store.CreateAsync("../x", 16, Ct))).Message, StringComparison.Ordinal);
        Assert.Contains("--size", (await Assert.ThrowsAsync<VolumeException>(() => _store.CreateAsync("small", 1, Ct))).Message, StringComparison.Ordinal);
        Assert.Equal(["data.ext4"], Directory.GetFileSystemEntries(_store.Directory).Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_cancelled_create_leaves_no_file()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _store.CreateAsync("data", 64, cts.Token));
        Assert.Empty(Directory.GetFileSystemEntries(_store.Directory));
    }

    [Fact]
    public async Task An_abandoned_temporary_is_swept_and_one_being_built_is_kept()
    {
        Directory.CreateDirectory(_store.Directory);
        var abandoned = Path.Combine(_store.Directory, ".old.0badf00d.tmp");
        var building = Path.Combine(_store.Directory, ".new.0000cafe.tmp");
        await File.WriteAllBytesAsync(abandoned, [1, 2, 3], Ct);
        using var held = FileLock.TryAcquire(building, exclusive: true);

        await _store.CreateAsync("data", 16, Ct);

        Assert.False(File.Exists(abandoned), "a temporary nobody holds should be deleted");
        Assert.True(File.Exists(building), "a temporary another builder holds must stay");
        Assert.Equal(["data"], _store.List().Select(v => v.Name));
    }

    [Fact]
    public async Task Rm_deletes_a_volume_and_refuses_one_in_use_or_unknown()
    {
        await _store.CreateAsync("data", 16, Ct);
        await _store.CreateAsync("other", 16, Ct);

        using (var attached = FileLock.TryAcquireExisting(_store.PathOf("data"), exclusive: false, writable: false))
        {
            Assert.NotNull(attached);
            var inUse = Assert.Throws<VolumeException>(() => _store.Remove("data"));
            Assert.Contains("volume \"data\" is in use by another sandbox", inUse.Message, StringComparison.Ordinal);
            Assert.True(File.Exists(_store.PathOf("data")));
        }

        _store.Remove("data");
        Assert.False(File.Exists(_store.PathOf("data")));

        var unknown = Assert.Throws<VolumeException>(() => _store.Remove("data"));
        Assert.Contains("named volume not found: \"data\"", unknown.Message, StringComparison.Ordinal);
        Assert.Contains("matchlock volume create data", unknown.Message, StringComparison.Ordinal);
        Assert.Contains("volumes: other", unknown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cp_copies_a_volume_sparsely_to_a_new_name_and_never_overwrites()
    {
        var source = await _store.CreateAsync("src", 512, Ct);
        var content = _dir.Combine("content");
        Directory.CreateDirectory(content);
        await File.WriteAllTextAsync(Path.Combine(content, "hello"), "from the source volume", Ct);
        // Put a file on the source with e2fsprogs (debugfs writes into the image, no mount needed).
        Assert.Equal(0, Run("debugfs", "-w", "-R", $"write {Path.Combine(content, "hello")} hello", source.Path).ExitCode);

        var (path, copy) = await _store.CopyAsync("src", "dst", Ct);
        Assert.NotNull(copy);
        Assert.Equal(_store.PathOf("dst"), path);
        Assert.Equal(source.SizeBytes, copy.SizeBytes);
        Assert.True(copy.UsedBytes < 16L * 1024 * 1024, $"the copy of a nearly empty 512 MB volume occupies {copy.UsedBytes} bytes; holes should stay holes");
        Assert.Contains("from the source volume", Run("debugfs", "-R", "cat hello", copy.Path).Stdout, StringComparison.Ordinal);

        var exists = await Assert.ThrowsAsync<VolumeException>(() => _store.CopyAsync("src", "dst", Ct));
        Assert.Contains("already exists", exists.Message, StringComparison.Ordinal);
        var missing = await Assert.ThrowsAsync<VolumeException>(() => _store.CopyAsync("nope", "new", Ct));
        Assert.Contains("matchlock volume create nope", missing.Message, StringComparison.Ordinal);
        Assert.Equal(["dst", "src"], _store.List().Select(v => v.Name));
        Assert.Equal(2, Directory.GetFileSystemEntries(_store.Directory).Length); // no temporaries left
    }

    [Fact]
    public async Task Cp_refuses_a_source_a_sandbox_writes_but_copies_one_attached_read_only()
    {
        await _store.CreateAsync("src", 16, Ct);
        using (var writer = FileLock.TryAcquireExisting(_store.PathOf("src"), exclusive: true, writable: true))
        {
            var inUse = await Assert.ThrowsAsync<VolumeException>(() => _store.CopyAsync("src", "dst", Ct));
            Assert.Contains("in use by another sandbox", inUse.Message, StringComparison.Ordinal);
            Assert.Null(_store.Find("dst"));
        }

        using (var reader = FileLock.TryAcquireExisting(_store.PathOf("src"), exclusive: false, writable: false))
        {
            await _store.CopyAsync("src", "dst", Ct);
        }

        Assert.NotNull(_store.Find("dst"));
        Assert.Equal(2, Directory.GetFileSystemEntries(_store.Directory).Length);
    }

    [Fact]
    public async Task Cp_imports_a_host_image_and_exports_a_volume_to_a_file_or_a_directory()
    {
        var host = _dir.Combine("host.ext4");
        Assert.Equal(0, Run("truncate", "-s", "32M", host).ExitCode);
        Assert.Equal(0, Run("mkfs.ext4", "-q", "-F", host).ExitCode);

        var (_, imported) = await _store.CopyAsync(host, "imported", Ct);
        Assert.Equal(32L * 1024 * 1024, imported!.SizeBytes);

        var exportDir = _dir.Combine("out");
        Directory.CreateDirectory(exportDir);
        var (intoDir, none) = await _store.CopyAsync("imported", exportDir + "/", Ct);
        Assert.Null(none);
        Assert.Equal(Path.Combine(exportDir, "imported.ext4"), intoDir);
        Assert.True(File.Exists(intoDir));

        var (toFile, _) = await _store.CopyAsync("imported", _dir.Combine("out", "named.ext4"), Ct);
        Assert.True(File.Exists(toFile));
        Assert.Contains("already exists", (await Assert.ThrowsAsync<VolumeException>(() => _store.CopyAsync("imported", toFile, Ct))).Message, StringComparison.Ordinal);
        Assert.Equal(["imported.ext4", "named.ext4"], Directory.GetFiles(exportDir).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        var notExt4 = _dir.Combine("junk.img");
        await File.WriteAllBytesAsync(notExt4, new byte[64 * 1024], Ct);
        Assert.Contains("not an ext4", (await Assert.ThrowsAsync<VolumeException>(() => _store.CopyAsync(notExt4, "junk", Ct))).Message, StringComparison.Ordinal);
        Assert.Contains("not a regular file", (await Assert.ThrowsAsync<VolumeException>(() => _store.CopyAsync("/dev/zero", "zero", Ct))).Message, StringComparison.Ordinal);
        Assert.Contains("at least one side", (await Assert.ThrowsAsync<VolumeException>(() => _store.CopyAsync(host, _dir.Combine("x.ext4"), Ct))).Message, StringComparison.Ordinal);
        Assert.Equal(["imported"], _store.List().Select(v => v.Name));
    }

    internal static (int ExitCode, string Stdout) Run(string program, params string[] args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result);
    }
}
