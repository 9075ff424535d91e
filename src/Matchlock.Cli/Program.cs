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
            PullCommand.CreatePull(),
            PullCommand.CreateBuild(),
            ImageCommands.Create(),
            DiagnoseCommand.Create(),
            VersionCommand.Create(),
        };
        foreach (var command in StateCommands.Create())
        {
            root.Subcommands.Add(command);
        }

        // We handle SIGINT/SIGTERM ourselves: the first Ctrl-C goes to the command in the guest.
        var config = new InvocationConfiguration { ProcessTerminationTimeout = null };
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            // Flag errors are matchlock's own failures: exit 125 like `docker run`, one line each.
            foreach (var error in parse.Errors)
            {
                Console.Error.WriteLine($"matchlock: {error.Message}");
            }

            Console.Error.WriteLine($"See 'matchlock {string.Join(' ', parse.CommandResult.Command.Name)} --help'.");
            return ExitCodes.MatchlockError;
        }

        return await parse.InvokeAsync(config);
    }
}
