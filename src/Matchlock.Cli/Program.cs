using System.CommandLine;
using Matchlock.Cli.Commands;

namespace Matchlock.Cli;

internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("Matchlock: run AI agents' code in ephemeral microVMs")
        {
            RunCommand.Create(),
            ImageCommands.Create(),
            DiagnoseCommand.Create(),
            VersionCommand.Create(),
        };

        // We handle SIGINT/SIGTERM ourselves: the first Ctrl-C goes to the command in the guest.
        var config = new InvocationConfiguration { ProcessTerminationTimeout = null };
        return await root.Parse(args).InvokeAsync(config);
    }
}
