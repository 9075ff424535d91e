using System.ComponentModel;
using System.Diagnostics;

namespace Matchlock.Sdk.Internal;

/// <summary>
/// Runs the <c>matchlock</c> CLI (directly or through <c>sudo</c>): <c>rpc</c> as a child, and the
/// one-shot commands the protocol has no method for (<c>rm</c>, <c>volume …</c>).
/// </summary>
internal static class CommandLine
{
    /// <summary>The binary to run: the given path, else <c>$MATCHLOCK_BIN</c>, else <c>matchlock</c> on PATH.</summary>
    public static string ResolveBinary(string? configured) =>
        !string.IsNullOrEmpty(configured) ? configured
        : Environment.GetEnvironmentVariable("MATCHLOCK_BIN") is { Length: > 0 } fromEnvironment ? fromEnvironment
        : "matchlock";

    public static ProcessStartInfo StartInfo(string binary, bool useSudo, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo(useSudo ? "sudo" : binary)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (useSudo)
        {
            start.ArgumentList.Add(binary);
        }

        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        return start;
    }

    /// <summary>Runs one CLI command to its end and returns its stdout.</summary>
    /// <exception cref="MatchlockRpcException">It could not start or exited non-zero (its stderr is in the message).</exception>
    public static async Task<string> RunAsync(string binary, bool useSudo, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var start = StartInfo(binary, useSudo, arguments);
        var what = $"{binary} {string.Join(' ', arguments)}";
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new MatchlockRpcException(MatchlockRpcException.InternalError, $"could not start '{what}'");
        }
        catch (Win32Exception ex)
        {
            throw new MatchlockRpcException(MatchlockRpcException.InternalError, $"could not start '{what}' ({ex.Message}); install matchlock or set MATCHLOCK_BIN", ex);
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            try
            {
                await process.WaitForExitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }

            var output = await stdout;
            var errors = await stderr;
            if (process.ExitCode != 0)
            {
                throw new MatchlockRpcException(
                    MatchlockRpcException.InternalError,
                    $"'{what}' exited with {process.ExitCode}: {errors.Trim()}");
            }

            return output;
        }
    }
}
