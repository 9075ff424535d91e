using System.Text;
using Matchlock.Core.Vfs;

namespace Matchlock.Core.Tests.Vfs;

/// <summary>The two small parsers every provider relies on: name checks and the ownership record.</summary>
public sealed class VfsNameAndOwnershipTests
{
    [Theory]
    [InlineData("a", (int)Errno.None)]
    [InlineData("...", (int)Errno.None)]
    [InlineData(".hidden", (int)Errno.None)]
    [InlineData("", (int)Errno.EINVAL)]
    [InlineData(".", (int)Errno.EINVAL)]
    [InlineData("..", (int)Errno.EINVAL)]
    [InlineData("a/b", (int)Errno.EINVAL)]
    [InlineData("a\0", (int)Errno.EINVAL)]
    public void Only_single_plain_components_pass(string name, int errno) =>
        Assert.Equal((Errno)errno, VfsName.Check(Encoding.UTF8.GetBytes(name)));

    [Fact]
    public void Names_may_hold_any_byte_but_slash_and_nul_up_to_255()
    {
        Assert.Equal(Errno.None, VfsName.Check([0xFF, 0xFE, 0x80]));
        Assert.Equal(Errno.None, VfsName.Check(new byte[255].Select(_ => (byte)'x').ToArray()));
        Assert.Equal(Errno.ENAMETOOLONG, VfsName.Check(new byte[256].Select(_ => (byte)'x').ToArray()));
    }

    [Fact]
    public void The_ownership_record_round_trips_with_setuid_and_sticky_bits()
    {
        var own = new OwnershipXattr(1000, 50, VfsMode.SetUid | VfsMode.Sticky | 0x1ED);
        Assert.Equal("1000:50:5755", Encoding.ASCII.GetString(own.Format()));
        Assert.Equal(own, OwnershipXattr.Parse(own.Format()));
        Assert.Equal(new OwnershipXattr(0, 0, 0x1A4), OwnershipXattr.Parse("0:0:644"u8));
    }

    [Theory]
    [InlineData("")]
    [InlineData("1000:1000")]
    [InlineData("1000:1000:644:1")]
    [InlineData("-1:0:644")]
    [InlineData("a:0:644")]
    [InlineData("0:0:888")]
    [InlineData("0:0:177777")]
    [InlineData("0:0:")]
    [InlineData("99999999999:0:644")]
    public void A_malformed_record_is_ignored(string text) =>
        Assert.Null(OwnershipXattr.Parse(Encoding.ASCII.GetBytes(text)));
}
