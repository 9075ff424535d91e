using System.CommandLine;
using System.Runtime.InteropServices;
using Matchlock.Rpc;

namespace Matchlock.Cli.Commands;

/// <summary>
/// <c>matchlock rpc</c>: the JSON-RPC server the SDKs start (contract/rpc.json). stdout carries
/// nothing but protocol lines; diagnostics go to stderr (the original clients discard it).
/// SIGINT, SIGTERM and SIGHUP stop it as <c>close</c> would.
/// </summary>
internal static class RpcCommand
{
    public static Command Create()
    {
        var cmd = new Command("rpc", "Serve JSON-RPC on stdin/stdout for the SDKs (one sandbox per process)");
        cmd.SetAction(async (parse, ct) =>
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
            using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => { c.Cancel = true; stop.Cancel(); });
            using var logging = CliLogging.ForConsole();
            var environment = new RpcEnvironment
            {
                Sandboxes = SandboxLaunch.CreateEnvironment(logging),
                BootTimeout = SandboxLaunch.BootTimeout(),
                EnsureImage = (reference, token) => PullCommand.EnsureAsync(reference, pull: false, token),
            };
            await using var stdin = Console.OpenStandardInput();
            await using var stdout = Console.OpenStandardOutput();
            await RpcServer.RunAsync(stdin, stdout, environment, stop.Token);
            return 0;
        });
        return cmd;
    }
}
