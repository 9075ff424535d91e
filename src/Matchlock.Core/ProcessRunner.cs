using System.ComponentModel;
using System.Diagnostics;
using Matchlock.Core.Images;
using Matchlock.Core.Interop;

namespace Matchlock.Core;

/// <summary>Result of a finished child process; output is captured for error messages.</summary>
internal sealed record ProcessResult(int ExitCode, string StandardOutput, string StandardError);

/// <summary>
/// Runs a tool to completion with arguments passed as a list (no shell, no quoting bugs), captures
/// stdout/stderr, and kills the process tree when the caller cancels.
/// </summary>
internal static class ProcessRunner
{
    /// <exception cref="FileNotFoundException">The program is not installed (not on PATH).</exception>
    public static Task<ProcessResult> RunAsync(
        string program,
        IEnumerable<string> arguments,
        IReadOnlyDictionary<string, string>? environment,
        CancellationToken cancellationToken) =>
        RunAsync(program, arguments, environment, standardInput: null, cancellationToken);

    /// <param name="standardInput">Written to the tool's stdin, which is then closed (null: empty stdin).</param>
    /// <exception cref="FileNotFoundException">The program is not installed (not on PATH).</exception>
    public static async Task<ProcessResult> RunAsync(
        string program,
        IEnumerable<string> arguments,
        IReadOnlyDictionary<string, string>? environment,
        string? standardInput,
        CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            // Never share our terminal: .NET rewrites terminal modes around children that do.
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        using var process = new Process { StartInfo = info };
        try
        {
            process.Start();
        }
        catch (Win32Exception e) when (e.NativeErrorCode == LinuxNative.ENOENT)
        {
            throw new FileNotFoundException($"{program}: not found on PATH", program, e);
        }

        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        if (standardInput is not null)
        {
            // Small inputs only (rule sets, batch files): written before we wait, while the
            // readers above drain the output, so neither side can block on a full pipe.
            await process.StandardInput.WriteAsync(standardInput.AsMemory(), CancellationToken.None);
        }

        process.StandardInput.Close();
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The caller gave up: do not leave the tool writing into a directory that is being deleted.
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            throw;
        }

        return new ProcessResult(process.ExitCode, await stdout, await stderr);
    }
}
