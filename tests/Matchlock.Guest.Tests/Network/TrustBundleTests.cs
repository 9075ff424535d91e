using Matchlock.Guest.Configuration;

namespace Matchlock.Guest.Tests.Network;

public sealed class TrustBundleTests : IDisposable
{
    private const string Pem = "-----BEGIN CERTIFICATE-----\nMIIBmatchlock\n-----END CERTIFICATE-----\n";
    private readonly string _root = Directory.CreateTempSubdirectory("ml-trust-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void Appends_to_every_existing_bundle_once_and_writes_the_ca_file()
    {
        Write("etc/ssl/certs/ca-certificates.crt", "SYSTEM ROOTS\n");
        Write("etc/pki/tls/certs/ca-bundle.crt", "RHEL ROOTS");
        Directory.CreateDirectory(Path.Combine(_root, "etc/ssl"));
        File.CreateSymbolicLink(Path.Combine(_root, "etc/ssl/cert.pem"), "certs/ca-certificates.crt");

        var touched = TrustBundle.Install(_root, Pem);
        TrustBundle.Install(_root, Pem); // a kept sandbox configures again on its next start

        Assert.Equal(["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"], touched);
        Assert.Equal("SYSTEM ROOTS\n" + Pem, Read("etc/ssl/certs/ca-certificates.crt"));
        Assert.Equal("RHEL ROOTS\n" + Pem, Read("etc/pki/tls/certs/ca-bundle.crt"));
        Assert.Equal(Pem, Read("etc/ssl/certs/matchlock-ca.crt"));
        Assert.False(File.Exists(Path.Combine(_root, "etc/ssl/ca-bundle.pem")));
    }

    [Fact]
    public void Creates_the_debian_bundle_when_the_image_has_none()
    {
        Assert.Equal(["/etc/ssl/certs/ca-certificates.crt"], TrustBundle.Install(_root, Pem));
        Assert.Equal(Pem, Read("etc/ssl/certs/ca-certificates.crt"));
    }

    [Fact]
    public void Refuses_anything_but_certificates()
    {
        Assert.Throws<ArgumentException>(() => TrustBundle.Install(_root, "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----"));
        Assert.Throws<ArgumentException>(() => TrustBundle.Install(_root, "hello"));
    }

    private void Write(string relative, string text)
    {
        var path = Path.Combine(_root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    private string Read(string relative) => File.ReadAllText(Path.Combine(_root, relative));
}
