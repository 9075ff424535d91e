using System.Formats.Tar;
using Matchlock.Core.Images;

namespace Matchlock.Core.Tests.Images;

/// <summary>The framing stream on its own: what it changes in a tar (only xattr records) and both TarReader read paths.</summary>
public sealed class PaxXattrStreamTests
{
    [Fact]
    public void Tar_without_xattrs_passes_through_byte_for_byte()
    {
        var tar = new TestTar()
            .Dir("etc")
            .File("etc/big", new string('b', 70_000), pax: new Dictionary<string, string> { ["comment"] = "kept" })
            .Symlink("link", "etc/big")
            .Whiteout(".wh.gone")
            .ToArray();
        byte[] trailing = [.. tar, .. new byte[4096]]; // writers pad the archive to a record size

        using var stream = new PaxXattrStream(new TrickleStream(trailing, 777), "layer 1");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);

        Assert.Equal(trailing, copy.ToArray());
    }

    [Fact]
    public void Synchronous_tar_reader_gets_a_token_for_the_exact_bytes()
    {
        var tar = new RawTar()
            .Pax(("SCHILY.xattr.security.capability", RawTar.CapNetRaw), ("SCHILY.xattr.user.bin", RawTar.Binary), ("comment", "kept"u8.ToArray()))
            .File("bin/ping", "elf")
            .File("plain", "p")
            .ToArray();

        using var stream = new PaxXattrStream(new TrickleStream(tar, 3), "layer 1");
        using var reader = new TarReader(stream);
        var ping = Assert.IsType<PaxTarEntry>(reader.GetNextEntry());
        var plain = reader.GetNextEntry();

        Assert.Equal("bin/ping", ping.Name);
        Assert.Equal("kept", ping.ExtendedAttributes["comment"]);
        Assert.DoesNotContain(ping.ExtendedAttributes.Keys, PaxXattrStream.IsXattrKey);
        var xattrs = stream.Take(ping.ExtendedAttributes[PaxXattrStream.TokenKey]);
        Assert.Equal(["security.capability", "user.bin"], xattrs.Select(x => x.Name));
        Assert.Equal(RawTar.CapNetRaw, xattrs[0].Value);
        Assert.Equal(RawTar.Binary, xattrs[1].Value);
        Assert.Throws<InvalidOperationException>(() => stream.Take(ping.ExtendedAttributes[PaxXattrStream.TokenKey]));
        Assert.Equal("plain", plain?.Name);
        Assert.Null(reader.GetNextEntry());
    }
}
