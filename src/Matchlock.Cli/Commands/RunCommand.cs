using System.CommandLine;
using System.Runtime.InteropServices;
using Matchlock.Cli.Terminal;
using Matchlock.Core.Network;
using Matchlock.Core.Sandboxes;
using Matchlock.Core.Vm;
using Matchlock.Protocol.Messages;

namespace Matchlock.Cli.Commands;

/// <summary><c>matchlock run</c>: boot a sandbox from an image, run one command in it, tear it down.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var options = new RunOptions();
        var command = new Command("run", "Run a command in a new microVM");
        foreach (var symbol in options.All())
        {
            switch (symbol)
            {
                case Option o:
                    command.Options.Add(o);
                    break;
                case Argument a:
                    command.Arguments.Add(a);
                    break;
            }
        }

        command.SetAction((parse, ct) => RunAsync(parse, options, ct));
        return command;
    }

    private static async Task<int> RunAsync(ParseResult parse, RunOptions o, CancellationToken ct)
    {
        SandboxSpec spec;
        ExecSpec? exec;
        Core.State.VmConfig config;
        bool tty, interactive;
        int? timeout;
        IReadOnlyList<Core.PortForwarding.PortMapping> publish;
        IReadOnlyList<System.Net.IPAddress>? addresses;
        var detach = parse.GetValue(o.Detach);
        var longLived = detach || !parse.GetValue(o.Remove);
        try
        {
            // The original's refusals, before anything is looked up or created (docs/COMPATIBILITY.md "CLI").
            if (detach && (parse.GetValue(o.Interactive) || parse.GetValue(o.Tty)))
            {
                throw new ArgumentException("--detach cannot be combined with -i/-t (attach later with `matchlock exec -it ID -- sh`)");
            }

            EnvFlags.RequireBareNamesSet(parse.GetValue(o.Env) ?? []);
            tty = parse.GetValue(o.Tty) && parse.GetValue(o.Interactive); // -t alone does nothing (docs/COMPATIBILITY.md "CLI")
            interactive = parse.GetValue(o.Interactive);
            timeout = parse.GetValue(o.Timeout);
            publish = PortForwardCommand.ParseMappings(parse.GetValue(o.Publish) ?? []);
            addresses = PortForwardCommand.ParseAddresses(parse.GetValue(o.Address));
            if (addresses is not null && publish.Count == 0)
            {
                throw new ArgumentException("--address only applies to published ports; add -p [LOCAL:]REMOTE");
            }

            spec = new SandboxSpec
            {
                Image = parse.GetValue(o.Image)!,
                Cpus = parse.GetValue(o.Cpus),
                PidsLimit = parse.GetValue(o.PidsLimit),
                MemoryMb = parse.GetValue(o.Memory),
                DiskSizeMb = parse.GetValue(o.DiskSize),
                Hostname = parse.GetValue(o.Hostname),
                NoNetwork = parse.GetValue(o.NoNetwork),
                Network = new SandboxNetworkSpec
                {
                    AllowHosts = SandboxNetworkSpec.SplitList(parse.GetValue(o.AllowHost)),
                    AllowTcp = SandboxNetworkSpec.SplitList(parse.GetValue(o.AllowTcp)),
                    Secrets = [.. parse.GetValue(o.Secret) ?? [], .. SecretFlags.ReadFiles(parse.GetValue(o.SecretFile) ?? [])],
                    SecretPlaceholders = SecretFlags.Placeholders(parse.GetValue(o.SecretPlaceholder) ?? []),
                    AddHosts = [.. SandboxNetworkSpec.SplitList(parse.GetValue(o.AddHost)).Select(SandboxNetworkSpec.ParseAddHost)],
                    DnsServers = [.. SandboxNetworkSpec.SplitList(parse.GetValue(o.DnsServers)).Select(ParseDnsServer)],
                    Mtu = parse.GetValue(o.Mtu),
                    Intercept = parse.GetValue(o.NetworkIntercept),
                    UpstreamCaFile = parse.GetValue(o.UpstreamCa),
                },
                Disks = [.. (parse.GetValue(o.Disk) ?? []).Select(d => DiskMount.Parse(d))],
                Mounts = [.. (parse.GetValue(o.Volume) ?? []).Select(v => Matchlock.Core.Vfs.VfsMountSpec.Parse(
                    v, Matchlock.Core.Vfs.VfsMountSpec.GuestPathOf(parse.GetValue(o.Workspace)!, "/", "--workspace")))],
                Accel = parse.GetValue(o.Accel) is { } a ? AccelSelector.ParseMode(a) : null,
                // A long-lived sandbox stays listed as stopped after kill (its directory keeps the
                // logs and its disk) until `rm` or `prune`, as a docker container does.
                RemoveOnDispose = !longLived,
            };
            spec.Validate();

            var image = await PullCommand.EnsureAsync(spec.Image, parse.GetValue(o.Pull), ct);
            var overrides = (parse.GetValue(o.EnvFile) ?? []).SelectMany(EnvironmentBuilder.ReadEnvFile)
                .Concat(parse.GetValue(o.Env) ?? []).ToList();
            var size = tty ? RawTerminal.GetSize() : null;
            var args = parse.GetValue(o.Command) ?? [];
            exec = longLived && args.Length == 0 ? null : new ExecSpec
            {
                Argv = CommandComposer.Compose(image.Config, parse.GetValue(o.Entrypoint), args),
                Env = [.. overrides],
                WorkingDir = parse.GetValue(o.Workdir),
                User = parse.GetValue(o.User),
                CreateWorkingDir = true, // as docker run does for -w and for an image WORKDIR that is missing
                Tty = tty,
                Stdin = interactive,
                Rows = size?.Rows ?? TerminalDefaults.Rows,
                Cols = size?.Cols ?? TerminalDefaults.Cols,
            }.OverImage(image.Config, Environment.GetEnvironmentVariable);
            config = RunConfig.From(
                spec,
                exec,
                EnvironmentBuilder.Build([], overrides, Environment.GetEnvironmentVariable),
                exec?.WorkingDir ?? parse.GetValue(o.Workdir) ?? image.Config.WorkingDir ?? "/",
                exec is null ? parse.GetValue(o.User) ?? image.Config.User : exec.User);
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("matchlock: interrupted before the sandbox started; nothing was left behind");
            return ExitCodes.Interrupted;
        }
        catch (Exception ex)
        {
            return CliErrors.Report(ex);
        }

        if (longLived)
        {
            var grace = parse.GetValue(o.GracefulShutdown) is { } g && Duration.TryParse(g, out var d) ? d : TimeSpan.FromSeconds(2);
            return detach && !OwnerSession.IsDetachedChild
                ? await OwnerSession.DetachAsync(ct)
                : await new OwnerSession(spec, config, exec, grace, publish, addresses).RunAsync();
        }

        return await new RunSession(spec, config, exec!, timeout, publish, addresses).RunAsync();
    }

    private static System.Net.IPAddress ParseDnsServer(string value) =>
        System.Net.IPAddress.TryParse(value, out var address)
            ? address
            : throw new ArgumentException($"--dns-servers \"{value}\" is not an IP address");
}
