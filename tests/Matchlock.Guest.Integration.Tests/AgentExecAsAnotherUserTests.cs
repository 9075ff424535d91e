using Matchlock.Guest.Tests;
using Matchlock.Protocol.Messages;

namespace Matchlock.Guest.Integration.Tests;

/// <summary>The exec request as another user, end to end over the real protocol. Needs root and the published guest binary.</summary>
public sealed class AgentExecAsAnotherUserTests
{
    [Fact]
    public async Task Exec_as_another_user_works_through_the_protocol()
    {
        LauncherAsAnotherUserTests.RequireHelper();

        await using var harness = new AgentHarness();
        var (reply, stdout, stderr) = await harness.ExecAsync(new ExecRequest { Argv = ["id", "-u"], User = "nobody" });
        Assert.True(reply.ExitCode == 0, stderr);
        Assert.Equal("65534\n", stdout);
    }
}
