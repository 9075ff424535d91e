using System.Diagnostics;
using Matchlock.Core.Network.Policy;
using Matchlock.Core.Network.Proxy;
using Matchlock.Core.Tests.Images;

namespace Matchlock.Core.Tests.Network;

/// <summary>The sandbox CA's leaves are what strict verifiers accept (checked with the openssl CLI).</summary>
public sealed class CertificateAuthorityTests
{
    [Theory]
    [InlineData("api.test")]
    [InlineData("xn--bcher-kva.example")]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public async Task LeavesPassOpensslStrictVerification(string host)
    {
        using var dir = new TempDir();
        using var ca = CertificateAuthority.Create();
        var caFile = dir.Combine("ca.pem");
        var leafFile = dir.Combine("leaf.pem");
        await File.WriteAllTextAsync(caFile, ca.CertificatePem, TestContext.Current.CancellationToken);
        using var leaf = ca.IssueLeaf(HostName.Parse(host));
        await File.WriteAllTextAsync(leafFile, leaf.ExportCertificatePem(), TestContext.Current.CancellationToken);
        var hostArg = HostName.Parse(host).IsIPAddress ? "-verify_ip" : "-verify_hostname";
        var (code, output) = await RunAsync("openssl", ["verify", "-x509_strict", "-purpose", "sslserver", hostArg, HostName.Parse(host).Value, "-CAfile", caFile, leafFile]);
        Assert.True(code == 0, output);
        Assert.Contains(": OK", output, StringComparison.Ordinal);
    }

    [Fact]
    public void ServerContextsAreCachedPerHost()
    {
        using var ca = CertificateAuthority.Create();
        var a = ca.GetServerContext(HostName.Parse("a.test"));
        Assert.Same(a, ca.GetServerContext(HostName.Parse("A.TEST.")));
        Assert.NotSame(a, ca.GetServerContext(HostName.Parse("b.test")));
        Assert.StartsWith("-----BEGIN CERTIFICATE-----", ca.CertificatePem, StringComparison.Ordinal);
    }

    internal static async Task<(int Code, string Output)> RunAsync(string file, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await stdout + await stderr);
    }
}
