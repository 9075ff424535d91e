using Matchlock.Guest.Processes;

namespace Matchlock.Guest.Tests;

public sealed class ExitStatusTests
{
    [Theory]
    [InlineData(0x0000, 0, null, 0)]
    [InlineData(0x0300, 3, null, 3)]
    [InlineData(0x0009, null, 9, 137)]
    [InlineData(0x008B, null, 11, 139)]
    public void Decodes_wait_status_words(int raw, int? code, int? signal, int shell)
    {
        var status = ExitStatus.FromWaitStatus(raw);
        Assert.Equal((code, signal, shell), (status.ExitCode, status.Signal, status.ShellCode));
    }

    [Fact]
    public void Core_dump_flag_is_kept()
    {
        Assert.True(ExitStatus.FromWaitStatus(0x008B).CoreDumped);
    }
}
