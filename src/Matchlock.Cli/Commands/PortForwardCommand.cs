using System.CommandLine;
using System.Net;
using System.Runtime.InteropServices;
using Matchlock.Core.Owner;
using Matchlock.Core.PortForwarding;

namespace Matchlock.Cli.Commands;

/// <summary>
/// <c>matchlock port-forward &lt;id&gt; [LOCAL:]REMOTE… [--address A]</c>: listens on host ports
/// in this process (like <c>kubectl port-forward</c>) and relays every connection through the
/// owner's control socket to the guest port, until Ctrl-C or the sandbox stops.
/// </summary>
internal static class PortForwardCommand
{
    public static Command Create()
    {
        var id = new Argument<string>("id") { Description = "The sandbox's VM id" };
        var ports = new Argument<string[]>("ports") { Arity = ArgumentArity.OneOrMore, Description = "[LOCAL:]REMOTE, e.g. 8080 or 18080:8080 (LOCAL 0: a free port)" };
        var address = CreateAddressOption();
        var cmd = new Command("port-forward", "Forward local ports to ports in a running long-lived sandbox") { id, ports, address };
        cmd.SetAction((parse, ct) => RunAsync(parse.GetValue(id)!, parse.GetValue(ports) ?? [], parse.GetValue(address)));
        return cmd;
    }

    /// <summary><c>--address</c> of <c>port-forward</c> and <c>run</c>.</summary>
    public static Option<string[]> CreateAddressOption() => new("--address")
    {
        Description = "Host address to listen on (repeatable; default: 127.0.0.1 and ::1; 'localhost' means both)",
    };

    /// <summary>null when none were given (the forwarder's default); "localhost" is both loopbacks.</summary>
    public static IReadOnlyList<IPAddress>? ParseAddresses(string[]? values)
    {
        if (values is null || values.Length == 0)
        {
            return null;
        }

        var result = new List<IPAddress>();
        foreach (var value in values.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
        {
            if (value.Equals("localhost", StringComparison.OrdinalIgnoreCase))
            {
                result.AddRange(PortForwarder.DefaultAddresses);
            }
            else if (IPAddress.TryParse(value.Trim('[', ']'), out var ip))
            {
                result.Add(ip);
            }
            else
            {
                throw new ArgumentException($"--address \"{value}\" is not an IP address (e.g. 127.0.0.1, ::1, 0.0.0.0 or localhost)");
            }
        }

        return [.. result.Distinct()];
    }

    public static IReadOnlyList<PortMapping> ParseMappings(IEnumerable<string> values) => [.. values.Select(PortMapping.Parse)];

    private static async Task<int> RunAsync(string id, string[] ports, string[]? addressValues)
    {
        IReadOnlyList<PortMapping> mappings;
        IReadOnlyList<IPAddress>? addresses;
        try
        {
            mappings = ParseMappings(ports);
            addresses = ParseAddresses(addressValues);
        }
        catch (ArgumentException ex)
        {
            return CliErrors.Report(ex);
        }

        using var stop = new CancellationTokenSource();
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; stop.Cancel(); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Cancel(); });

        OwnerClient client;
        try
        {
            client = await OwnerClient.ConnectAsync(id, cancellationToken: stop.Token);
        }
        catch (OwnerUnavailableException ex)
        {
            Console.Error.WriteLine($"matchlock: {ex.Message}");
            return ExitCodes.MatchlockError;
        }
        catch (OperationCanceledException)
        {
            return ExitCodes.Interrupted;
        }

        await using (client)
        {
            PortForwarder forwarder;
            try
            {
                forwarder = PortForwarder.Start(mappings, addresses, client.ConnectPortAsync, OwnerClient.DescribePortFailure, CliErrors.Warn);
            }
            catch (PortForwardException ex)
            {
                return CliErrors.Report(ex);
            }

            await using (forwarder)
            {
                foreach (var binding in forwarder.Bindings)
                {
                    Console.Error.WriteLine(PublishedPorts.ForwardingLine(binding));
                }

                Console.Error.Flush();
                var stopped = Task.Delay(Timeout.Infinite, stop.Token).ContinueWith(_ => { }, TaskScheduler.Default);
                if (await Task.WhenAny(stopped, client.Closed) == stopped)
                {
                    return 0;
                }
            }
        }

        Console.Error.WriteLine($"matchlock: sandbox {id} stopped; port-forward ends");
        return ExitCodes.MatchlockError;
    }
}
