namespace Matchlock.Integration.Tests;

/// <summary>
/// A real distribution image (Debian bookworm from debootstrap, packed by umoci, exported by
/// skopeo: scripts/make-debian-image.sh) imports and runs: dynamic glibc programs, Python with
/// OpenSSL, the usrmerge symlinks, setuid bits, and a user from the image's passwd.
/// </summary>
public sealed class RealImageTests(MatchlockHome home) : IClassFixture<MatchlockHome>
{
    [Fact]
    public async Task A_debian_image_imports_and_runs_its_programs()
    {
        VmPrerequisites.Ensure();
        if (await home.ImportDebianTestImageAsync() is { } why)
        {
            HostPrerequisites.SkipOrFail(why);
        }

        var r = await home.RunAsync(
            ["run", "--image", "debian-test", "--", "sh", "-c",
             "cat /etc/debian_version; python3 -c 'import ssl; print(ssl.OPENSSL_VERSION.split()[0])'; " +
             "curl --version | head -c 4; echo; readlink /bin; stat -c %A /usr/bin/su; su nobody -s /bin/sh -c 'id -un'"],
            timeout: TimeSpan.FromMinutes(3));
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = r.Stdout.Split('\n');
        Assert.StartsWith("12.", lines[0], StringComparison.Ordinal);
        Assert.Equal("OpenSSL", lines[1]);
        Assert.Equal("curl", lines[2]);
        Assert.Equal("usr/bin", lines[3]);
        Assert.Equal("-rwsr-xr-x", lines[4]);
        Assert.Equal("nobody", lines[5]);
        home.AssertNothingLeft();
    }
}
