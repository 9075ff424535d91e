using Matchlock.Guest.Processes;

namespace Matchlock.Guest.Tests;

public sealed class EnvironmentBuilderTests
{
    [Fact]
    public void Adds_docker_defaults_for_what_is_missing()
    {
        var env = EnvironmentBuilder.Build(["FOO=bar"], "/home/app", "box", tty: true);
        Assert.Equal(["FOO=bar", $"PATH={EnvironmentBuilder.DefaultPath}", "HOSTNAME=box", "TERM=xterm", "HOME=/home/app"], env);
    }

    [Fact]
    public void Requested_values_win_and_later_duplicates_replace_in_place()
    {
        var env = EnvironmentBuilder.Build(["PATH=/x", "A=1", "HOME=/h", "A=2", "TERM=dumb"], "/root", null, tty: true);
        Assert.Equal(["PATH=/x", "A=2", "HOME=/h", "TERM=dumb"], env);
    }

    [Fact]
    public void No_term_without_a_tty_and_malformed_entries_are_dropped()
    {
        var env = EnvironmentBuilder.Build(["NOEQUALS", "=empty", "EMPTY="], "/", null, tty: false);
        Assert.Equal(["EMPTY=", $"PATH={EnvironmentBuilder.DefaultPath}", "HOME=/"], env);
    }

    [Fact]
    public void Values_may_contain_equals_signs()
    {
        var env = EnvironmentBuilder.Build(["OPTS=a=b=c"], "/", null, tty: false);
        Assert.Equal("a=b=c", EnvironmentBuilder.Get(env, "OPTS"));
    }
}
