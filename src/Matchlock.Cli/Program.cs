using System.CommandLine;
using Matchlock.Cli.Commands;

namespace Matchlock.Cli;

internal static class Program
{
    /// <summary>The arguments as given: <c>run -d</c> re-executes itself with them.</summary>
    public static IReadOnlyList<string> Args { get; private set; } = [];

    public static async Task<int> Main(string[] args)
    {
        ExecTimings.StartIfRequested();
        Args = args;
        var root = new RootCommand("Matchlock: run AI agents' code in ephemeral microVMs")
        {
            RunCommand.Create(),
            OwnerCommands.CreateExec(),
            OwnerCommands.CreateAllowList(),
            OwnerCommands.CreateKill(),
            PortForwardCommand.Create(),
            PullCommand.CreatePull(),
            PullCommand.CreateBuild(),
            ImageCommands.Create(),
            VolumeCommands.Create(),
            DiagnoseCommand.Create(),
            VersionCommand.Create(),
            RpcCommand.Create(),
        };
        foreach (var command in StateCommands.Create())
        {
            root.Subcommands.Add(command);
        }

        root.Subcommands.Add(HelpCommand.Create(root));
        root.Options.Add(CliLogging.LevelOption);
        VersionCommand.ReplaceRootVersionOption(root);

        // We handle SIGINT/SIGTERM ourselves: the first Ctrl-C goes to the command in the guest.
        var config = new InvocationConfiguration { ProcessTerminationTimeout = null };
        // No response files: `@NAME` is a volume (`run --disk @data:/mnt`), as in the original,
        // not "read more arguments from the file NAME".
        var parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        var unknownFlag = parse.Errors.Count == 0 && !IsHelp(parse) ? UsageChecks.FindUnknownFlag(parse) : null;
        if (parse.Errors.Count > 0 || unknownFlag is not null)
        {
            // Flag errors are matchlock's own failures: exit 125 like `docker run`, one line each.
            foreach (var error in parse.Errors)
            {
                Console.Error.WriteLine($"matchlock: {error.Message}");
            }

            if (unknownFlag is not null)
            {
                Console.Error.WriteLine($"matchlock: unknown flag: {unknownFlag} (put the command's own flags after --)");
            }

            // The whole path ("allow-list add"), not just the innermost name.
            var path = new List<string>();
            for (var result = parse.CommandResult; result.Command is not RootCommand; result = (System.CommandLine.Parsing.CommandResult)result.Parent!)
            {
                path.Insert(0, result.Command.Name);
            }

            Console.Error.WriteLine($"See 'matchlock {string.Join(' ', path)} --help'.");
            return ExitCodes.MatchlockError;
        }

        try
        {
            CliLogging.Apply(parse);
        }
        catch (ArgumentException ex)
        {
            Console.Error.WriteLine($"matchlock: {ex.Message}");
            return ExitCodes.MatchlockError;
        }

        return await parse.InvokeAsync(config);
    }

    /// <summary><c>--help</c> or <c>--version</c> was given: they print and exit, whatever else is there.</summary>
    private static bool IsHelp(ParseResult parse) =>
        parse.Tokens.Any(t => t.Type == System.CommandLine.Parsing.TokenType.Option && t.Value is "--help" or "-h" or "-?" or "--version");
}
