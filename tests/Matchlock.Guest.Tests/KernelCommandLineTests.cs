using Matchlock.Guest.Init;

namespace Matchlock.Guest.Tests;

public sealed class KernelCommandLineTests
{
    [Fact]
    public void Keeps_only_matchlock_keys_without_the_prefix()
    {
        var keys = KernelCommandLine.Parse("console=ttyS0 quiet matchlock.channel=matchlock tsc_early_khz=2000000 matchlock.selftest\n");
        Assert.Equal(2, keys.Count);
        Assert.Equal("matchlock", keys["channel"]);
        Assert.Equal("", keys["selftest"]);
    }

    [Fact]
    public void Double_quotes_group_spaces_like_the_kernel()
    {
        var keys = KernelCommandLine.Parse("matchlock.note=\"a b  c\" matchlock.x=\"\" matchlock.=nothing");
        Assert.Equal("a b  c", keys["note"]);
        Assert.Equal("", keys["x"]);
        Assert.Equal(2, keys.Count);
    }
}
