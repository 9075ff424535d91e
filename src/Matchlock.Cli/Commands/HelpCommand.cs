using System.CommandLine;

namespace Matchlock.Cli.Commands;

/// <summary>
/// <c>matchlock help [COMMAND…]</c>, as the original's <c>help</c> (docs/COMPATIBILITY.md "CLI"): the same
/// text as <c>matchlock COMMAND… --help</c>.
/// </summary>
internal static class HelpCommand
{
    public static Command Create(RootCommand root)
    {
        var words = new Argument<string[]>("command") { Arity = ArgumentArity.ZeroOrMore, Description = "The command to describe, e.g. run or allow-list add" };
        var command = new Command("help", "Help about any command") { words };
        command.SetAction(parse =>
        {
            var target = parse.GetValue(words) ?? [];
            var help = root.Parse([.. target, "--help"]);
            if (help.Errors.Count > 0 || help.Tokens.Take(target.Length).Any(t => t.Type != System.CommandLine.Parsing.TokenType.Command))
            {
                Console.Error.WriteLine($"matchlock: unknown command \"{string.Join(' ', target)}\"; `matchlock --help` lists them");
                return ExitCodes.MatchlockError;
            }

            return help.Invoke();
        });
        return command;
    }
}
