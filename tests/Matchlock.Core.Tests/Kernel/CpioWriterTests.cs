using Matchlock.Core.Kernel;

namespace Matchlock.Core.Tests.Kernel;

/// <summary>
/// Our newc writer: deterministic output, paths confined to the archive root, no duplicates. That
/// GNU cpio reads its archives back exactly (extracting a device node needs root) is proven in
/// Matchlock.Integration.Tests/Kernel/CpioWriterRoundTripTests.
/// </summary>
public sealed class CpioWriterTests
{
    [Fact]
    public async Task Output_is_deterministic()
    {
        var ct = TestContext.Current.CancellationToken;
        async Task<byte[]> Build()
        {
            var ms = new MemoryStream();
            await using var w = new CpioWriter(ms, leaveOpen: true);
            await w.AddFileAsync("x/y", new byte[] { 7, 7, 7 }, 0x1A4, ct);
            await w.FinishAsync(ct);
            return ms.ToArray();
        }

        Assert.Equal(await Build(), await Build());
    }

    [Theory]
    [InlineData("../etc/passwd")]
    [InlineData("a/../../b")]
    [InlineData("/")]
    [InlineData("./x/./y")]
    public void Paths_that_could_leave_the_root_are_rejected(string path) =>
        Assert.Throws<ArgumentException>(() => CpioWriter.Normalize(path));

    [Fact]
    public async Task Duplicate_entries_are_rejected()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var w = new CpioWriter(new MemoryStream());
        await w.AddFileAsync("init", new byte[] { 1 }, 0x1ED, ct);
        await Assert.ThrowsAsync<InvalidOperationException>(() => w.AddFileAsync("/init", new byte[] { 1 }, 0x1ED, ct));
        await Assert.ThrowsAsync<InvalidOperationException>(() => w.AddFileAsync("init/x", new byte[] { 1 }, 0x1ED, ct));
    }
}
