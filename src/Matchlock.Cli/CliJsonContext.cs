using System.Text.Json.Serialization;

namespace Matchlock.Cli;

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(Dictionary<string, Dictionary<string, object>>))]
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(List<Matchlock.Cli.Commands.ImageListEntry>))]
[JsonSerializable(typeof(List<Matchlock.Cli.Commands.VolumeListEntry>))]
[JsonSerializable(typeof(Matchlock.Cli.Commands.VolumeListEntry))]
[JsonSerializable(typeof(string))]
internal sealed partial class CliJsonContext : JsonSerializerContext;
