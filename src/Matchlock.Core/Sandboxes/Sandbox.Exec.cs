using Matchlock.Protocol.Messages;

namespace Matchlock.Core.Sandboxes;

public sealed partial class Sandbox
{
    /// <summary>Starts a command and returns at once; the caller drives its streams.</summary>
    public async Task<ExecSession> StartExecAsync(ExecSpec spec, CancellationToken cancellationToken)
    {
        if (spec.Argv.Count == 0 || string.IsNullOrEmpty(spec.Argv[0]))
        {
            throw new ArgumentException("a command is required");
        }

        return new ExecSession(await OpenAsync(spec.ToRequest(WithSandboxEnvironment(spec.Env)), cancellationToken), spec);
    }

    /// <summary>The sealed network's variables (secret placeholders, CA) first, so the command's own settings win.</summary>
    private IReadOnlyList<string> WithSandboxEnvironment(IReadOnlyList<string> env)
    {
        if (Network is null)
        {
            return env;
        }

        var own = env.Select(e => e.Split('=', 2)[0]).ToHashSet(StringComparer.Ordinal);
        return [.. Network.GuestEnvironment.Where(e => !own.Contains(e.Split('=', 2)[0])), .. env];
    }

    /// <summary>
    /// Runs a command to completion, copying its output to <paramref name="stdout"/> and
    /// <paramref name="stderr"/> as it comes. Cancelling the token stops the command in the guest
    /// (SIGTERM to its process group, SIGKILL after <see cref="ExecSpec.KillGrace"/>) and then throws.
    /// </summary>
    public async Task<ExecResult> ExecAsync(ExecSpec spec, Stream? stdin, Stream stdout, Stream stderr, CancellationToken cancellationToken)
    {
        await using var session = await StartExecAsync(spec with { Stdin = stdin is not null }, cancellationToken);
        var stdoutCopy = session.Stdout.CopyToAsync(stdout, CancellationToken.None);
        var stderrCopy = session.Stderr.CopyToAsync(stderr, CancellationToken.None);
        if (stdin is not null)
        {
            // Not awaited: a terminal's stdin may never reach EOF, and the command can end without reading it.
            _ = PumpIgnoringEndAsync(session, stdin);
        }

        ExecResult result;
        using (cancellationToken.Register(() => _ = session.CancelAsync(spec.KillGrace, CancellationToken.None).AsTask()))
        {
            result = await session.WaitAsync(CancellationToken.None);
        }

        await Task.WhenAll(stdoutCopy, stderrCopy);
        await stdout.FlushAsync(CancellationToken.None);
        await stderr.FlushAsync(CancellationToken.None);
        cancellationToken.ThrowIfCancellationRequested();
        return result;
    }

    private static async Task PumpIgnoringEndAsync(ExecSession session, Stream stdin)
    {
        try
        {
            await session.PumpStdinAsync(stdin, CancellationToken.None);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException)
        {
            // The command ended (or the sandbox stopped) before its input did.
        }
    }
}
