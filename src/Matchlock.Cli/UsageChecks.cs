using System.CommandLine;
using System.CommandLine.Parsing;

namespace Matchlock.Cli;

/// <summary>
/// Usage errors System.CommandLine lets through (docs/COMPATIBILITY.md "CLI"): a word that looks like a
/// flag but names none, standing before <c>--</c>, is bound to a positional argument (the
/// command to run, VM ids) instead of being refused. The original refuses it (<c>unknown
/// flag</c>); so do we, so it is never handed to the guest or taken for an id.
/// </summary>
internal static class UsageChecks
{
    /// <summary>The first flag-like word bound to an argument before <c>--</c>; null when there is none.</summary>
    public static string? FindUnknownFlag(ParseResult parse)
    {
        var doubleDash = -1;
        for (var i = 0; i < parse.Tokens.Count; i++)
        {
            if (parse.Tokens[i].Type == TokenType.DoubleDash)
            {
                doubleDash = i;
                break;
            }
        }

        for (SymbolResult? result = parse.CommandResult; result is not null; result = result.Parent)
        {
            if (result is not CommandResult command)
            {
                continue;
            }

            foreach (var token in command.Children.OfType<ArgumentResult>().SelectMany(a => a.Tokens))
            {
                if (token.Value.Length < 2 || token.Value[0] != '-')
                {
                    continue;
                }

                var index = IndexOf(parse.Tokens, token);
                if (doubleDash < 0 || (index >= 0 && index < doubleDash))
                {
                    return token.Value;
                }
            }
        }

        return null;
    }

    private static int IndexOf(IReadOnlyList<Token> tokens, Token token)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            if (ReferenceEquals(tokens[i], token))
            {
                return i;
            }
        }

        return -1;
    }
}
