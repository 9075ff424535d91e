using System.Net;
using Matchlock.Core.PortForwarding;
using Matchlock.Core.Sandboxes;

namespace Matchlock.Cli.Commands;

/// <summary>
/// The start every <c>run</c> shares, short- or long-lived: bind the published ports (before the
/// VM boots, so a taken port costs no boot), then boot with them recorded. A failure is reported
/// here, with nothing left bound or running, and its exit status returned.
/// </summary>
internal static class SandboxLaunch
{
    /// <param name="config">What <c>get</c> shows (docs/COMPATIBILITY.md "CLI"): kept in the VM directory once it exists.</param>
    /// <returns>The running sandbox and its ports (the caller disposes both); or no sandbox and the exit status.</returns>
    public static async Task<(Sandbox? Sandbox, PublishedPorts? Ports, int ExitCode)> StartAsync(
        SandboxSpec spec,
        Core.State.VmConfig? config,
        IReadOnlyList<PortMapping> publish,
        IReadOnlyList<IPAddress>? addresses,
        Microsoft.Extensions.Logging.ILoggerFactory logging,
        CancellationToken cancellationToken)
    {
        PublishedPorts? ports;
        try
        {
            ports = PublishedPorts.Bind(publish, addresses);
        }
        catch (PortForwardException ex)
        {
            return (null, null, CliErrors.Report(ex));
        }

        int exitCode;
        try
        {
            var listeners = ports?.Bindings.Select(b => b.ToString()).ToArray() ?? [];
            var bootTimeout = BootTimeout() ?? spec.BootTimeout;
            var sandbox = await Sandbox.CreateAsync(spec with { Listeners = listeners, BootTimeout = bootTimeout }, CreateEnvironment(logging), cancellationToken);
            try
            {
                config?.Write(sandbox.Directory);
            }
            catch (IOException ex)
            {
                CliErrors.Warn($"could not keep the sandbox's config for `matchlock get`: {ex.Message}");
            }

            return (sandbox, ports, 0);
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("matchlock: interrupted while starting the sandbox; nothing was left running");
            exitCode = ExitCodes.Interrupted;
        }
        catch (Exception ex)
        {
            exitCode = CliErrors.Report(ex);
        }

        if (ports is not null)
        {
            await ports.DisposeAsync();
        }

        return (null, null, exitCode);
    }

    /// <summary>Where sandboxes live, with the CLI's knobs passed in (the library reads no environment variables).</summary>
    public static SandboxEnvironment CreateEnvironment(Microsoft.Extensions.Logging.ILoggerFactory logging) =>
        SandboxEnvironment.CreateDefault() with
        {
            Logging = logging,
            ExtraKernelArgs = Environment.GetEnvironmentVariable("MATCHLOCK_KERNEL_ARGS") ?? "",
        };

    /// <summary><c>MATCHLOCK_BOOT_TIMEOUT</c> (seconds), when set.</summary>
    public static TimeSpan? BootTimeout() =>
        double.TryParse(Environment.GetEnvironmentVariable("MATCHLOCK_BOOT_TIMEOUT"), System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds > 0
            ? TimeSpan.FromSeconds(seconds)
            : null;
}
