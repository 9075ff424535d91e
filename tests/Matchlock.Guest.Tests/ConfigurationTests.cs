using Matchlock.Guest.Configuration;

namespace Matchlock.Guest.Tests;

public sealed class ConfigurationTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("matchlock-guest-test-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Theory]
    [InlineData("150000")]
    [InlineData("-1 100000")]
    [InlineData("1.5 100000")]
    [InlineData("150000 0")]
    [InlineData("100 100000")]
    public void Cpu_quota_rejects_malformed_values(string value)
    {
        Assert.Throws<ArgumentException>(() => CpuQuota.Validate(value));
    }

    [Fact]
    public void Host_files_have_localhost_the_hostname_and_extra_hosts()
    {
        GuestIdentity.WriteHostFiles(_root, "box-1", [("db.internal", "10.0.0.5")]);
        Assert.Equal("box-1\n", File.ReadAllText(Path.Combine(_root, "etc/hostname")));
        var hosts = File.ReadAllText(Path.Combine(_root, "etc/hosts"));
        Assert.Equal(
            "127.0.0.1 localhost localhost.localdomain box-1\n::1 localhost ip6-localhost ip6-loopback\n10.0.0.5 db.internal\n",
            hosts);
    }

    [Fact]
    public void Resolv_conf_replaces_a_symlink_instead_of_writing_through_it()
    {
        Directory.CreateDirectory(Path.Combine(_root, "etc"));
        var link = Path.Combine(_root, "etc/resolv.conf");
        File.CreateSymbolicLink(link, "../run/systemd/resolve/stub-resolv.conf");
        GuestIdentity.WriteResolvConf(_root, ["10.0.2.3"], ["corp.example"]);
        Assert.Null(new FileInfo(link).LinkTarget);
        Assert.Equal("nameserver 10.0.2.3\nsearch corp.example\n", File.ReadAllText(link));
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("new\nline")]
    [InlineData("x_y")]
    public void Hostnames_that_could_inject_lines_are_refused(string hostname)
    {
        Assert.Throws<ArgumentException>(() => GuestIdentity.WriteHostFiles(_root, hostname, []));
    }

    [Fact]
    public void Extra_hosts_with_whitespace_are_refused()
    {
        Assert.Throws<ArgumentException>(() => GuestIdentity.WriteHostFiles(_root, "ok", [("a b", "1.2.3.4")]));
    }
}
