using Matchlock.Core.Images;
using Matchlock.Core.Tests.Images;

namespace Matchlock.Integration.Tests.Images;

/// <summary>
/// Layers written without tar's end-of-archive marker (umoci via skopeo does this; GNU tar, Go
/// and Docker accept it) import like complete ones, while a layer cut short is still refused.
/// </summary>
public sealed class TarEndMarkerTests : IDisposable
{
    private readonly TempDir _temp = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _temp.Dispose();

    /// <summary>The layer's bytes without the trailing zero blocks (its end marker and padding).</summary>
    private static byte[] WithoutEndMarker(byte[] tar)
    {
        var end = tar.Length;
        while (end >= 512 && tar.AsSpan(end - 512, 512).IndexOfAnyExcept((byte)0) < 0)
        {
            end -= 512;
        }

        return tar[..end];
    }

    [Fact]
    public async Task A_layer_without_the_end_marker_imports()
    {
        HostPrerequisites.Ensure(HostNeeds.Root | HostNeeds.ImageTools);
        var layer = WithoutEndMarker(new TestTar().Dir("etc").File("etc/hello", "world").ToArray());
        Assert.Equal(0, layer.Length % 512);
        var store = new ImageStore(_temp.Combine("images"));

        var record = await store.ImportAsync("nomarker:1", new MemoryStream(TestArchive.Legacy(new TestArchive.Image(["nomarker:1"], [layer]))), Ct);

        Assert.Equal("nomarker:1", record.Tag);
        Assert.True(new FileInfo(record.RootfsPath).Length > 0);
    }

    [Fact]
    public async Task A_layer_cut_at_a_block_boundary_is_still_refused_by_its_digest()
    {
        HostPrerequisites.Ensure(HostNeeds.Root | HostNeeds.ImageTools);
        var whole = WithoutEndMarker(new TestTar().File("a", "first").File("b", new string('x', 2000)).ToArray());

        // Cut after the first entry (header + one data block): a clean block boundary, so the
        // reader sees a complete-looking archive; the config's diff id is of the whole layer.
        var cut = whole[..1024];
        var archive = TestArchive.Legacy(new TestArchive.Image(["cut:1"], [whole]));
        var tampered = ReplaceLayer(archive, whole, cut);
        var store = new ImageStore(_temp.Combine("images"));

        var e = await Assert.ThrowsAsync<ImageFormatException>(() => store.ImportAsync("cut:1", new MemoryStream(tampered), Ct));
        Assert.Contains("corrupt", e.Message, StringComparison.Ordinal);
        Assert.Empty(store.List());
        Assert.Empty(Directory.GetDirectories(_temp.Combine("images"), ".tmp*"));
    }

    /// <summary>Rewrites a legacy archive with one layer member's content replaced.</summary>
    private static byte[] ReplaceLayer(byte[] archive, byte[] original, byte[] replacement)
    {
        using var input = new MemoryStream(archive);
        using var output = new MemoryStream();
        using (var reader = new System.Formats.Tar.TarReader(input))
        using (var writer = new System.Formats.Tar.TarWriter(output, leaveOpen: true))
        {
            while (reader.GetNextEntry(copyData: true) is { } entry)
            {
                if (entry.DataStream is { } data)
                {
                    using var bytes = new MemoryStream();
                    data.CopyTo(bytes);
                    var content = bytes.ToArray();
                    TestArchive.Write(writer, entry.Name, content.AsSpan().SequenceEqual(original) ? replacement : content);
                }
                else
                {
                    writer.WriteEntry(entry);
                }
            }
        }

        return output.ToArray();
    }
}
