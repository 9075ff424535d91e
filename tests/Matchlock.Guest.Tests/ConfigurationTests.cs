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
        GuestIdentity.WriteHostFiles(_root, "box-1", null, [("db.internal", "10.0.0.5")]);
        Assert.Equal("box-1\n", File.ReadAllText(Path.Combine(_root, "etc/hostname")));
        var hosts = File.ReadAllText(Path.Combine(_root, "etc/hosts"));
        Assert.StartsWith("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n", hosts, StringComparison.Ordinal);
        Assert.Contains("127.0.1.1\tbox-1\n", hosts, StringComparison.Ordinal);
        Assert.EndsWith("10.0.0.5\tdb.internal\n", hosts, StringComparison.Ordinal);
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
        Assert.Throws<ArgumentException>(() => GuestIdentity.WriteHostFiles(_root, hostname, null, []));
    }

    [Fact]
    public void Extra_hosts_with_whitespace_are_refused()
    {
        Assert.Throws<ArgumentException>(() => GuestIdentity.WriteHostFiles(_root, "ok", null, [("a b", "1.2.3.4")]));
    }
}
