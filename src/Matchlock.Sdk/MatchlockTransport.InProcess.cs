using Matchlock.Rpc;

namespace Matchlock.Sdk;

public abstract partial class MatchlockTransport
{
    /// <summary>
    /// Runs Matchlock's own server (<see cref="RpcServer"/>) in this process, over in-memory pipes:
    /// no child process, same protocol. For .NET hosts that embed the Matchlock libraries.
    /// </summary>
    /// <param name="environment">
    /// What the CLI would otherwise provide: <see cref="RpcEnvironment.Sandboxes"/> (for example
    /// <c>SandboxEnvironment.CreateDefault()</c>) and <see cref="RpcEnvironment.EnsureImage"/>,
    /// which must return the image for a reference (the CLI looks it up in its
    /// <c>ImageStore</c> and pulls it when missing; a host without registry access can only
    /// return images already stored). This process then needs the rights the CLI needs
    /// (KVM, network setup), since the sandbox runs here.
    /// </param>
    public static MatchlockTransport InProcess(RpcEnvironment environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        return InMemory((input, output, stop) => RpcServer.RunAsync(input, output, environment, stop));
    }
}
