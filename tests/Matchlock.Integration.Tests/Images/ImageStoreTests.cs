using System.Text;
using Matchlock.Core;
using Matchlock.Core.Images;
using Matchlock.Core.Tests.Images;

namespace Matchlock.Integration.Tests.Images;

/// <summary>
/// End to end through the store: archive layouts, EROFS output, tags, removal, and that failed or
/// cancelled imports leave the store exactly as it was. Needs root and mkfs.erofs (erofs-utils, installed by ./setup.sh).
/// </summary>
public sealed class ImageStoreTests(BaseImageFixture baseImage) : IClassFixture<BaseImageFixture>, IDisposable
{
    private readonly TempDir _temp = new();

    private string StoreRoot => _temp.Combine("images");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _temp.Dispose();

    private async Task<ImageRecord> ImportFileAsync(ImageStore store, string tag, string path, CancellationToken? ct = null)
    {
        await using var input = File.OpenRead(path);
        return await store.ImportAsync(tag, input, ct ?? Ct);
    }

    private static async Task<ImageRecord> ImportBytesAsync(ImageStore store, string tag, byte[] archive)
    {
        // A non-seekable wrapper would be closer to stdin; the reader never seeks either way.
        using var input = new MemoryStream(archive);
        return await store.ImportAsync(tag, input, Ct);
    }

    [Fact]
    public async Task Base_image_from_the_script_imports_with_its_config_and_a_faithful_erofs_rootfs()
    {
        HostPrerequisites.Ensure(BaseImageFixture.Needs);
        var store = new ImageStore(StoreRoot);

        var record = await ImportFileAsync(store, "busybox:latest", baseImage.Legacy);

        Assert.Equal("busybox:latest", record.Tag);
        Assert.Equal(baseImage.ConfigDigest, record.Id);
        Assert.Equal("import", record.Source);
        Assert.Equal(["sh"], record.Config.Cmd);
        Assert.Equal(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], record.Config.Env);
        Assert.Equal(new FileInfo(record.RootfsPath).Length, record.SizeBytes);
        Assert.Equal(Path.Combine(StoreRoot, "rootfs"), Path.GetDirectoryName(record.RootfsPath));
        Assert.StartsWith(record.Id[7..] + "-", Path.GetFileName(record.RootfsPath), StringComparison.Ordinal);

        // dump.erofs 1.5 prints only the low mode bits, so check the tree fsck.erofs extracts.
        var extracted = _temp.Combine("extracted");
        var fsck = await ProcessRunner.RunAsync("fsck.erofs", [$"--extract={extracted}", record.RootfsPath], null, Ct);
        Assert.True(fsck.ExitCode == 0, fsck.StandardError);
        var paths = new[] { "home/user", "tmp", "root", "bin/busybox", "bin/sh", "etc/passwd" }.Select(p => Path.Combine(extracted, p));
        var stat = await ProcessRunner.RunAsync("stat", ["-c", "%n %a %u:%g %F", .. paths], null, Ct);
        Assert.Equal(
            """
            home/user 755 1000:1000 directory
            tmp 1777 0:0 directory
            root 700 0:0 directory
            bin/busybox 755 0:0 regular file
            bin/sh 777 0:0 symbolic link
            etc/passwd 644 0:0 regular file

            """,
            stat.StandardOutput.Replace(extracted + "/", "", StringComparison.Ordinal));
        Assert.Contains("1000:1000:user:/home/user", await File.ReadAllTextAsync(Path.Combine(extracted, "etc/passwd"), Ct), StringComparison.Ordinal);
        Assert.Equal("/bin/busybox", new FileInfo(Path.Combine(extracted, "bin/sh")).LinkTarget);

        Assert.Equal([record], store.List());
        Assert.Empty(Directory.GetDirectories(StoreRoot, ".tmp-*"));
    }

    [Fact]
    public async Task Erofs_image_is_reproducible_for_the_same_image()
    {
        HostPrerequisites.Ensure(BaseImageFixture.Needs);
        var first = await ImportFileAsync(new ImageStore(_temp.Combine("a")), "busybox", baseImage.Legacy);
        var second = await ImportFileAsync(new ImageStore(_temp.Combine("b")), "busybox", baseImage.Docker25);

        Assert.Equal(await File.ReadAllBytesAsync(first.RootfsPath, Ct), await File.ReadAllBytesAsync(second.RootfsPath, Ct));
    }

    [Theory]
    [InlineData("docker25")]
    [InlineData("oci-only")]
    [InlineData("legacy-gzip")]
    public async Task Other_archive_layouts_import_to_the_same_image(string layout)
    {
        HostPrerequisites.Ensure(BaseImageFixture.Needs);
        var path = layout switch
        {
            "docker25" => baseImage.Docker25,
            "oci-only" => baseImage.OciOnly,
            _ => baseImage.LegacyGzip,
        };

        var record = await ImportFileAsync(new ImageStore(StoreRoot), "busybox:latest", path);

        Assert.Equal(baseImage.ConfigDigest, record.Id);
        Assert.Equal(["sh"], record.Config.Cmd);
    }

    [Fact]
    public async Task Tags_normalise_and_ids_find_the_image()
    {
        HostPrerequisites.Ensure(BaseImageFixture.Needs);
        var store = new ImageStore(StoreRoot);
        var record = await ImportFileAsync(store, "docker.io/library/busybox", baseImage.Legacy);

        Assert.Equal("busybox:latest", record.Tag);
        foreach (var reference in new[] { "busybox", "busybox:latest", "library/busybox", "docker.io/library/busybox:latest", record.Id, record.Id[7..19] })
        {
            Assert.Equal(record, store.Find(reference));
        }

        Assert.Null(store.Find("busybox:other"));
        Assert.Null(store.Find("sha256:"));
    }

    [Fact]
    public async Task Importing_the_same_image_again_only_adds_the_tag_and_removal_deletes_it_with_the_last_tag()
    {
        HostPrerequisites.Ensure(BaseImageFixture.Needs);
        var store = new ImageStore(StoreRoot);
        var first = await ImportFileAsync(store, "busybox", baseImage.Legacy);
        var second = await ImportFileAsync(store, "mine/box:v1", baseImage.OciOnly);

        Assert.Equal(first.Id, second.Id);
        Assert.Equal(["busybox:latest", "mine/box:v1"], store.List().Select(r => r.Tag));

        Assert.True(store.Remove("busybox"));
        Assert.True(File.Exists(second.RootfsPath));
        Assert.False(store.Remove("busybox"));

        Assert.True(store.Remove("mine/box:v1"));
        Assert.False(File.Exists(second.RootfsPath));
        Assert.Empty(store.List());
        Assert.Empty(Directory.GetDirectories(StoreRoot, ".tmp-*"));
    }

    [Fact]
    public async Task Moving_a_tag_to_another_image_deletes_the_image_nothing_names()
    {
        HostPrerequisites.Ensure(BaseImageFixture.Needs);
        var store = new ImageStore(StoreRoot);
        var old = await ImportBytesAsync(store, "app", TestArchive.Legacy(new TestArchive.Image(["app:latest"], [new TestTar().File("v", "1").ToArray()])));
        var replacement = await ImportBytesAsync(store, "app", TestArchive.Legacy(new TestArchive.Image(["app:latest"], [new TestTar().File("v", "2").ToArray()])));

        Assert.NotEqual(old.Id, replacement.Id);
        Assert.False(File.Exists(old.RootfsPath));
        Assert.Equal([replacement], store.List());
    }

    [Fact]
    public async Task Config_fields_are_parsed_from_the_image_config()
    {
        HostPrerequisites.Ensure(BaseImageFixture.Needs);
        var record = await ImportBytesAsync(new ImageStore(StoreRoot), "cfg",
            TestArchive.Legacy(new TestArchive.Image(["cfg:latest"], [new TestTar().File("a", "x").ToArray()], GzipLayers: true)));

        Assert.Equal(["/bin/entry"], record.Config.Entrypoint);
        Assert.Equal("/work", record.Config.WorkingDir);
        Assert.Equal("1000:1000", record.Config.User);
        Assert.Equal(["8080/tcp"], record.Config.ExposedPorts);
        Assert.Equal("b", record.Config.Labels["a"]);
        Assert.Equal("amd64", record.Config.Architecture);
    }

    [Fact]
    public async Task Zstd_layers_import_like_gzip_ones()
    {
        HostPrerequisites.Ensure(BaseImageFixture.Needs);
        var layer = new TestTar().File("etc/zstd-marker", "zstd works").ToArray();
        var record = await ImportBytesAsync(new ImageStore(StoreRoot), "z",
            TestArchive.Legacy(new TestArchive.Image(["z:latest"], [layer], ZstdLayers: true)));

        var extracted = _temp.Combine("extracted");
        var fsck = await ProcessRunner.RunAsync("fsck.erofs", [$"--extract={extracted}", record.RootfsPath], null, Ct);
        Assert.True(fsck.ExitCode == 0, fsck.StandardError);
        Assert.Equal("zstd works", await File.ReadAllTextAsync(Path.Combine(extracted, "etc/zstd-marker"), Ct));
    }

    [Fact]
    public async Task Gc_deletes_rootfs_files_and_blobs_nothing_references_and_keeps_the_rest()
    {
        HostPrerequisites.Ensure(BaseImageFixture.Needs);
        var store = new ImageStore(StoreRoot);
        var kept = await ImportFileAsync(store, "busybox", baseImage.Legacy);
        var orphanBlob = Path.Combine(StoreRoot, "blobs", "sha256", new string('a', 64));
        var orphanRootfs = Path.Combine(StoreRoot, "rootfs", new string('b', 64) + "-00000000.erofs");
        await File.WriteAllTextAsync(orphanBlob, "left by a crash", Ct);
        await File.WriteAllTextAsync(orphanRootfs, "left by a crash", Ct);

        var result = await store.CollectGarbageAsync(cancellationToken: Ct);

        Assert.Equal(new GarbageCollection(1, 1, 30), result);
        Assert.False(File.Exists(orphanBlob));
        Assert.False(File.Exists(orphanRootfs));
        Assert.True(File.Exists(kept.RootfsPath));
        Assert.Equal([kept], store.List());
        Assert.Equal(new GarbageCollection(0, 0, 0), await store.CollectGarbageAsync(cancellationToken: Ct));
    }

    [Fact]
    public async Task Archive_with_several_images_imports_the_one_with_the_requested_tag()
    {
        HostPrerequisites.Ensure(BaseImageFixture.Needs);
        var archive = TestArchive.Legacy(
            new TestArchive.Image(["one:latest"], [new TestTar().File("a", "1").ToArray()], Cmd: "one"),
            new TestArchive.Image(["docker.io/library/two:latest"], [new TestTar().File("a", "2").ToArray()], Cmd: "two"));
        var store = new ImageStore(StoreRoot);

        Assert.Equal(["two"], (await ImportBytesAsync(store, "two", archive)).Config.Cmd);
        var e = await Assert.ThrowsAsync<ImageFormatException>(() => ImportBytesAsync(store, "three", archive));
        Assert.Contains("one:latest", e.Message, StringComparison.Ordinal);
        Assert.Contains("docker.io/library/two:latest", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_image_error_lists_the_images_that_exist_and_how_to_import()
    {
        HostPrerequisites.Ensure(BaseImageFixture.Needs);
        var store = new ImageStore(StoreRoot);
        var empty = Assert.Throws<ImageNotFoundException>(() => store.Resolve("alpine"));
        Assert.Contains("no images", empty.Message, StringComparison.Ordinal);

        await ImportFileAsync(store, "busybox", baseImage.Legacy);
        var e = Assert.Throws<ImageNotFoundException>(() => store.Resolve("alpine"));

        Assert.Contains("\"alpine\"", e.Message, StringComparison.Ordinal);
        Assert.Contains("busybox:latest", e.Message, StringComparison.Ordinal);
        Assert.Contains("matchlock image import", e.Message, StringComparison.Ordinal);
        Assert.Equal(["busybox:latest"], e.Available);
    }

    public static TheoryData<string, string> BadArchives() => new()
    {
        { "garbage", "corrupt or truncated" },
        { "truncated-gzip", "corrupt or truncated" },
        { "truncated-tar", "corrupt or truncated" },
        { "truncated-gzip-layer", "corrupt or truncated" },
        { "layer-escape", "which is a symlink; refusing to import" },
        { "layer-device", "entry \"dev/null\" is a character device" },
        { "layer-malformed-pax", "PAX extended header at byte 1024 of the layer tar is malformed" },
        { "zstd-layer", "corrupt or truncated" },
        { "xz-layer", "xz layers not supported" },
        { "corrupt-oci-blob", "is corrupt: its digest is" },
        { "diff-id-mismatch", "its uncompressed digest is" },
        { "no-manifest", "neither manifest.json nor index.json" },
    };

    [Theory]
    [MemberData(nameof(BadArchives))]
    public async Task Bad_archive_is_an_image_format_error_and_leaves_the_store_unchanged(string kind, string expected)
    {
        HostPrerequisites.Ensure(BaseImageFixture.Needs);
        var store = new ImageStore(StoreRoot);
        await ImportFileAsync(store, "busybox", baseImage.Legacy);
        var before = StoreState();

        var e = await Assert.ThrowsAsync<ImageFormatException>(() => ImportBytesAsync(store, "bad", BadArchive(kind)));

        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.Equal(before, StoreState());
        Assert.Null(store.Find("bad"));
    }

    [Fact]
    public async Task Image_with_binary_file_capabilities_imports()
    {
        HostPrerequisites.Ensure(BaseImageFixture.Needs);
        // Debian's /bin/ping: cap_net_raw as Go's archive/tar writes it (raw bytes in SCHILY.xattr.*).
        var layer = new RawTar()
            .Pax(("SCHILY.xattr.security.capability", RawTar.CapNetRaw), ("SCHILY.xattr.user.bin", RawTar.Binary))
            .File("bin/ping", "elf")
            .ToArray();
        var store = new ImageStore(StoreRoot);

        var record = await ImportBytesAsync(store, "ping", TestArchive.Legacy(new TestArchive.Image(["ping:latest"], [layer], GzipLayers: true)));

        Assert.Equal([record], store.List());
        Assert.True(new FileInfo(record.RootfsPath).Length > 0);
    }

    [Fact]
    public async Task Concurrent_imports_of_one_image_share_a_single_image_directory()
    {
        HostPrerequisites.Ensure(BaseImageFixture.Needs);
        var store = new ImageStore(StoreRoot);

        var records = await Task.WhenAll(
            Task.Run(() => ImportFileAsync(store, "one", baseImage.Legacy), Ct),
            Task.Run(() => ImportFileAsync(new ImageStore(StoreRoot), "two", baseImage.Docker25), Ct));

        Assert.Equal(records[0].Id, records[1].Id);
        Assert.Equal(["one:latest", "two:latest"], store.List().Select(r => r.Tag));
        Assert.Single(Directory.GetFiles(Path.Combine(StoreRoot, "rootfs")));
    }

    [Fact]
    public async Task Cancelled_import_leaves_no_staging_directory()
    {
        HostPrerequisites.Ensure(BaseImageFixture.Needs);
        var store = new ImageStore(StoreRoot);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await using var input = new CancelAfterStream(File.OpenRead(baseImage.Legacy), cts, afterBytes: 1 << 20);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.ImportAsync("busybox", input, cts.Token));

        Assert.Empty(Directory.GetDirectories(StoreRoot, ".tmp-*"));
        Assert.Empty(store.List());
    }

    [Fact]
    public async Task Staging_left_by_a_killed_import_is_swept_by_the_next_one()
    {
        HostPrerequisites.Ensure(BaseImageFixture.Needs);
        Directory.CreateDirectory(StoreRoot);
        var abandoned = Path.Combine(StoreRoot, ".tmp-deadbeef");
        Directory.CreateDirectory(abandoned);
        await File.WriteAllTextAsync(Path.Combine(abandoned, ".lock"), "", Ct);

        await ImportFileAsync(new ImageStore(StoreRoot), "busybox", baseImage.Legacy);

        Assert.False(Directory.Exists(abandoned));
    }

    private byte[] BadArchive(string kind)
    {
        var good = File.ReadAllBytes(baseImage.Legacy);
        switch (kind)
        {
            case "garbage":
                return Encoding.ASCII.GetBytes(new string('z', 4096));
            case "truncated-gzip":
                var gz = File.ReadAllBytes(baseImage.LegacyGzip);
                return gz[..(gz.Length / 2)];
            case "truncated-gzip-layer":
                var gzLayer = TestTar.Gzip(new TestTar().File("big", new string('q', 100_000)).File("more", "x").ToArray());
                return TestArchive.Legacy(new TestArchive.Image(["bad:latest"], [gzLayer[..(gzLayer.Length / 2)]]));
            case "truncated-tar":
                return good[..(good.Length - 5000)];
            case "layer-escape":
                return TestArchive.Legacy(new TestArchive.Image(["bad:latest"], [new TestTar().Symlink("evil", "/").File("evil/etc/passwd", "x").ToArray()]));
            case "layer-device":
                return TestArchive.Legacy(new TestArchive.Image(["bad:latest"], [new TestTar().CharDevice("dev/null").ToArray()]));
            case "layer-malformed-pax":
                var malformed = new RawTar().File("a", "x").PaxData('x', [.. "99 SCHILY.xattr.user.a=x\n"u8]).File("b", "y").ToArray();
                return TestArchive.Legacy(new TestArchive.Image(["bad:latest"], [malformed], GzipLayers: true));
            case "zstd-layer":
                return TestArchive.Legacy(new TestArchive.Image(["bad:latest"], [[0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]]));
            case "xz-layer":
                return TestArchive.Legacy(new TestArchive.Image(["bad:latest"], [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0]]));
            case "corrupt-oci-blob":
                var oci = File.ReadAllBytes(baseImage.OciOnly);
                // Flip a byte in the middle of the (only big) layer blob.
                oci[oci.Length / 2] ^= 0xff;
                return oci;
            case "diff-id-mismatch":
                var layer = new TestTar().File("a", "x").ToArray();
                var archive = TestArchive.Legacy(new TestArchive.Image(["bad:latest"], [layer]));
                var at = IndexOf(archive, Encoding.ASCII.GetBytes("\0\0\0\0x"));
                archive[at + 4] = (byte)'y'; // same length, different content: only the diff id can tell
                return archive;
            default:
                return new TestTar().File("hello.txt", "not an image").ToArray();
        }
    }

    private static int IndexOf(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle);

    /// <summary>
    /// Everything observable in the store: every path (walked with lstat) and every record. Idle
    /// lock files and SQLite's WAL side files are not content.
    /// </summary>
    private string StoreState()
    {
        var sb = new StringBuilder();
        foreach (var path in Directory.EnumerateFileSystemEntries(StoreRoot, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var relative = Path.GetRelativePath(StoreRoot, path);
            if (!relative.StartsWith("locks", StringComparison.Ordinal) && !relative.StartsWith("store.db-", StringComparison.Ordinal))
            {
                sb.AppendLine(relative);
            }
        }

        foreach (var record in new ImageStore(StoreRoot).List())
        {
            sb.AppendLine(record.ToString());
        }

        return sb.ToString();
    }

    /// <summary>Cancels the token once the consumer has read a given amount: a user pressing Ctrl-C mid-import.</summary>
    private sealed class CancelAfterStream(Stream inner, CancellationTokenSource cts, long afterBytes) : ReadOnlyStream
    {
        private long _read;

        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer);
            _read += n;
            if (_read >= afterBytes)
            {
                cts.Cancel();
            }

            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await inner.ReadAsync(buffer, cancellationToken);
            _read += n;
            if (_read >= afterBytes)
            {
                await cts.CancelAsync();
            }

            return n;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
