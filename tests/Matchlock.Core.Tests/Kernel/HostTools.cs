using System.Diagnostics;

namespace Matchlock.Core.Tests.Kernel;

/// <summary>Runs host tools (cpio) that the tests use as independent oracles.</summary>
internal static class HostTools
{
    public static async Task<string> RunAsync(string program, string args, string? stdinFile, string? workDir, CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workDir ?? Environment.CurrentDirectory,
        };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(stdinFile is null ? $"{program} {args}" : $"{program} {args} < '{stdinFile}'");
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = p.StandardError.ReadToEndAsync(cancellationToken);
        await p.WaitForExitAsync(cancellationToken);
        Assert.True(p.ExitCode == 0, $"{program} {args} failed ({p.ExitCode}): {await stderr}");
        return await stdout;
    }
}
