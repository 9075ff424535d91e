using System.Text;
using Matchlock.Core.Images;
using Matchlock.Core.Interop;
using Matchlock.Core.Tests.Images;
using Matchlock.Core;

namespace Matchlock.Integration.Tests.Images;

/// <summary>
/// Xattrs from PAX headers reach the flattened files byte for byte (binary values TarReader cannot
/// carry included), stay on the entry they were written for across every kind of tar framing, and
/// malformed PAX headers are refused. Needs root (security.capability) and user xattrs on the temp filesystem.
/// </summary>
public sealed class LayerXattrTests : IDisposable
{
    private static readonly string[] XattrNames = ["security.capability", "user.bin", "user.tag", "user.bin2"];

    private readonly TempDir _temp = new();
    private readonly string _root;

    public LayerXattrTests()
    {
        _root = _temp.Combine("root");
        Directory.CreateDirectory(_root);
    }

    public void Dispose() => _temp.Dispose();

    /// <summary>How the layer reaches the flattener: the reader must keep the framing whatever the pieces.</summary>
    public enum Input
    {
        Seekable,
        NonSeekable,
        OneBytePerRead,
    }

    private string At(string path) => Path.Combine(_root, path);

    private async Task ApplyAsync(Input input, params byte[][] layers)
    {
        var flattener = new LayerFlattener(_root);
        for (var i = 0; i < layers.Length; i++)
        {
            await using Stream stream = input switch
            {
                Input.Seekable => new MemoryStream(layers[i]),
                Input.NonSeekable => new TrickleStream(layers[i], int.MaxValue),
                _ => new TrickleStream(layers[i], 1),
            };
            await flattener.ApplyLayerAsync(stream, $"layer {i + 1} (sha256:test)", TestContext.Current.CancellationToken);
        }

        flattener.Finish();
    }

    /// <summary>Every xattr of <see cref="XattrNames"/> the path has (absent ones left out), as hex.</summary>
    private Dictionary<string, string> Xattrs(string path) =>
        XattrNames
            .Select(name => (name, value: LinuxNative.LGetXattr(At(path), name)))
            .Where(x => x.value is not null)
            .ToDictionary(x => x.name, x => Convert.ToHexString(x.value!));

    private static Dictionary<string, string> Expect(params (string Name, byte[] Value)[] xattrs) =>
        xattrs.ToDictionary(x => x.Name, x => Convert.ToHexString(x.Value));

    /// <summary>TarWriter's entries without its end marker, to splice between hand-written headers.</summary>
    private static byte[] Unterminated(TestTar tar) => tar.ToArray()[..^1024];

    [Fact]
    public async Task Binary_file_capability_and_binary_user_xattr_are_applied_byte_for_byte()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        await ApplyAsync(Input.NonSeekable, new RawTar()
            .Pax(("SCHILY.xattr.security.capability", RawTar.CapNetRaw), ("SCHILY.xattr.user.bin", RawTar.Binary))
            .File("bin/ping", "ping-elf")
            .ToArray());

        Assert.Equal(Expect(("security.capability", RawTar.CapNetRaw), ("user.bin", RawTar.Binary)), Xattrs("bin/ping"));
        Assert.Equal("ping-elf", await File.ReadAllTextAsync(At("bin/ping"), TestContext.Current.CancellationToken));
        var getcap = await ProcessRunner.RunAsync("getcap", [At("bin/ping")], null, TestContext.Current.CancellationToken);
        Assert.Equal($"{At("bin/ping")} cap_net_raw=ep", getcap.StandardOutput.Trim());
    }

    [Theory]
    [InlineData(Input.Seekable)]
    [InlineData(Input.NonSeekable)]
    [InlineData(Input.OneBytePerRead)]
    public async Task Each_entry_keeps_its_own_xattrs_across_mixed_framing(Input input)
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        var gnuLong = "deep/" + new string('g', 120) + "/file";
        var paxLong = "deep/" + new string('p', 120) + "/file";
        // 100 KiB uses all 11 octal digits of the size field; inside it sits a well-formed PAX header
        // and file header, which must stay file content (read as framing, they would be rewritten).
        var big = new byte[100 * 1024];
        Random.Shared.NextBytes(big);
        var planted = new RawTar().Pax(("SCHILY.xattr.user.tag", "planted"u8.ToArray())).File("planted", "x").ToArray();
        planted.AsSpan(0, 2048).CopyTo(big.AsSpan(8192));
        var afterValue = (byte[])[(byte)'\n', 0xc3, 0x28, (byte)'\n'];

        var lower = new TestTar().File("gone", "g").ToArray();
        var layer = new RawTar()
            .Raw(Unterminated(new TestTar().Dir("bin").Dir("etc")))
            .Pax(("SCHILY.xattr.security.capability", RawTar.CapNetRaw), ("SCHILY.xattr.user.bin", RawTar.Binary))
            .File("bin/ping", "ping-elf")
            .File("bin/plain", new string('p', 700)) // no PAX header; data padded to 1024
            .GnuLongName(gnuLong)
            .File(gnuLong[..100], RawTar.Utf8("long"), gnu: true)
            .Pax(("SCHILY.xattr.user.tag", "big"u8.ToArray()), ("mtime", "1577934245.5"u8.ToArray()))
            .File("big", big)
            .Pax(("SCHILY.xattr.user.tag", "dir"u8.ToArray()))
            .Dir("etc/conf.d")
            .Pax(("SCHILY.xattr.user.tag", "link"u8.ToArray()))
            .HardLink("bin/ping2", "bin/ping")
            .Pax(("SCHILY.xattr.user.tag", "whiteout"u8.ToArray()))
            .File(".wh.gone", new string('w', 600)) // data the flattener never reads: TarReader skips it through the stream
            .Pax(("SCHILY.xattr.user.tag", "after"u8.ToArray()), ("SCHILY.xattr.user.bin2", afterValue))
            .File("etc/after", "a")
            .Raw(Unterminated(new TestTar().File("etc/plain2", "p2")))
            .Pax(("path", RawTar.Utf8(paxLong)), ("SCHILY.xattr.user.tag", "pax-path"u8.ToArray()))
            .File(paxLong[..100], "pax")
            .ToArray();

        await ApplyAsync(input, lower, layer);

        Assert.Equal(Expect(("security.capability", RawTar.CapNetRaw), ("user.bin", RawTar.Binary)), Xattrs("bin/ping"));
        Assert.Equal(Xattrs("bin/ping"), Xattrs("bin/ping2")); // a hard link shares the inode; its own PAX header is not applied
        Assert.Empty(Xattrs("bin/plain"));
        Assert.Equal(new string('p', 700), await File.ReadAllTextAsync(At("bin/plain"), TestContext.Current.CancellationToken));
        Assert.Empty(Xattrs(gnuLong));
        Assert.Equal("long", await File.ReadAllTextAsync(At(gnuLong), TestContext.Current.CancellationToken));
        Assert.Equal(Expect(("user.tag", "big"u8.ToArray())), Xattrs("big"));
        Assert.Equal(big, await File.ReadAllBytesAsync(At("big"), TestContext.Current.CancellationToken));
        Assert.False(File.Exists(At("planted")));
        Assert.Equal(Expect(("user.tag", "dir"u8.ToArray())), Xattrs("etc/conf.d"));
        Assert.False(File.Exists(At("gone")));
        Assert.Equal(Expect(("user.tag", "after"u8.ToArray()), ("user.bin2", afterValue)), Xattrs("etc/after"));
        Assert.Empty(Xattrs("etc/plain2"));
        Assert.Equal(Expect(("user.tag", "pax-path"u8.ToArray())), Xattrs(paxLong));
        Assert.Equal("pax", await File.ReadAllTextAsync(At(paxLong), TestContext.Current.CancellationToken));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Pax_size_record_and_base256_size_field_keep_the_framing(bool base256)
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        var data = Encoding.ASCII.GetBytes(new string('s', 1000));
        var layer = new RawTar()
            // The header says 0 bytes; the PAX size record (what writers use past 8 GiB) says 1000.
            .Pax(("size", "1000"u8.ToArray()), ("SCHILY.xattr.user.tag", "sized"u8.ToArray()))
            .File("sized", data, sizeField: 0)
            .File("b256", data, base256: base256)
            .Pax(("SCHILY.xattr.user.tag", "next"u8.ToArray()))
            .File("next", "n")
            .ToArray();

        await ApplyAsync(Input.NonSeekable, layer);

        Assert.Equal(data, await File.ReadAllBytesAsync(At("sized"), TestContext.Current.CancellationToken));
        Assert.Equal(Expect(("user.tag", "sized"u8.ToArray())), Xattrs("sized"));
        Assert.Equal(data, await File.ReadAllBytesAsync(At("b256"), TestContext.Current.CancellationToken));
        Assert.Equal(Expect(("user.tag", "next"u8.ToArray())), Xattrs("next"));
    }

    [Fact]
    public async Task Libarchive_xattrs_are_decoded_and_win_over_their_schily_copy()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        var unpadded = Convert.ToBase64String(RawTar.Binary).TrimEnd('=');
        await ApplyAsync(Input.NonSeekable, new RawTar()
            .Pax(("LIBARCHIVE.xattr.user.caf%C3%A9", RawTar.Utf8(unpadded)), ("SCHILY.xattr.user.café", "stale"u8.ToArray()))
            .File("f", "x")
            .ToArray());

        Assert.Equal(RawTar.Binary, LinuxNative.LGetXattr(At("f"), "user.café"));
    }

    [Fact]
    public async Task Xattrs_in_a_global_header_are_ignored_as_before()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        await ApplyAsync(Input.NonSeekable, new RawTar()
            .Global(("SCHILY.xattr.user.bin", RawTar.Binary), ("comment", "from git archive"u8.ToArray()))
            .Pax(("SCHILY.xattr.user.tag", "f"u8.ToArray()))
            .File("f", "x")
            .ToArray());

        Assert.Equal(Expect(("user.tag", "f"u8.ToArray())), Xattrs("f"));
        Assert.Single(Directory.GetFileSystemEntries(_root));
    }

    public static TheoryData<string, byte[], string> MalformedHeaders() => new()
    {
        { "length beyond the header", [.. "99 SCHILY.xattr.user.a=x\n"u8], "claims 99 bytes, but only 25 remain" },
        { "length not decimal", [.. "2x SCHILY.xattr.user.a=x\n"u8], "does not start with a decimal length" },
        { "length too short", [.. "20 SCHILY.xattr.user.a=x\n"u8], "is not \"LEN KEY=VALUE\\n\" within its length 20" },
        { "no key", [.. "12 abcdefgh\n"u8], "has no \"KEY=\"" },
        { "trailing bytes", [.. RawTar.Record("SCHILY.xattr.user.a", "x"u8.ToArray()), 0, 0, 0], "does not start with a decimal length" },
        { "duplicate key", [.. RawTar.Record("SCHILY.xattr.user.a", [1]), .. RawTar.Record("SCHILY.xattr.user.a", [2])], "appears twice" },
        { "bad size record", [.. RawTar.Record("size", "12k"u8.ToArray())], "is not a size" },
        { "reserved key", [.. RawTar.Record("MATCHLOCK.xattrs", "1"u8.ToArray())], "uses the reserved key" },
        { "name with NUL", [.. RawTar.Record("SCHILY.xattr.user.a\0b", [1])], "contains a NUL byte" },
        { "name not UTF-8", [.. "25 SCHILY.xattr.user."u8, 0xff, .. "=1\n"u8], "is not valid UTF-8" },
        { "bad base64", [.. RawTar.Record("LIBARCHIVE.xattr.user.a", "!!!"u8.ToArray())], "is not valid base64" },
    };

    [Theory]
    [MemberData(nameof(MalformedHeaders))]
    public async Task Malformed_pax_header_is_refused_naming_the_layer(string what, byte[] paxData, string expected)
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        var layer = new RawTar().File("first", "1").PaxData('x', paxData).File("second", "2").ToArray();

        var e = await Assert.ThrowsAsync<ImageFormatException>(() => ApplyAsync(Input.NonSeekable, layer));

        Assert.StartsWith("layer 1 (sha256:test): ", e.Message, StringComparison.Ordinal);
        Assert.True(e.Message.Contains(expected, StringComparison.Ordinal), $"{what}: {e.Message}");
        Assert.False(File.Exists(At("second")));
    }

    [Fact]
    public async Task Header_with_a_bad_checksum_is_refused()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        var layer = new RawTar().File("a", "x").File("b", "y").ToArray();
        layer[512 + 512 + 150] ^= 1; // b's checksum field

        var e = await Assert.ThrowsAsync<ImageFormatException>(() => ApplyAsync(Input.NonSeekable, layer));

        Assert.Equal("layer 1 (sha256:test): corrupt or truncated layer tar (the header at byte 1024 fails its checksum); "
            + "re-export the image and import again", e.Message);
    }

    [Fact]
    public async Task Pax_header_over_one_mebibyte_is_refused()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        var layer = new RawTar().Pax(("comment", new byte[(1 << 20) + 1])).File("f", "x").ToArray();

        var e = await Assert.ThrowsAsync<ImageFormatException>(() => ApplyAsync(Input.NonSeekable, layer));

        Assert.Contains("over the 1 MiB limit", e.Message, StringComparison.Ordinal);
    }
}
