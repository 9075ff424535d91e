using System.CommandLine;
using System.Reflection;
using Matchlock.Protocol;

namespace Matchlock.Cli.Commands;

internal static class VersionCommand
{
    public static Command Create()
    {
        var command = new Command("version", "Print the version");
        command.SetAction(_ =>
        {
            var version = typeof(VersionCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "dev";
            Console.WriteLine($"matchlock {version} (protocol {ProtocolInfo.Version})");
            return 0;
        });
        return command;
    }
}
