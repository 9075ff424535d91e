using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Matchlock.Core.Volumes;

namespace Matchlock.Cli.Commands;

/// <summary>
/// <c>matchlock volume create|ls|rm|cp</c>: named ext4 volumes for <c>run --disk @NAME:/path</c>
/// (docs/COMPATIBILITY.md "CLI"; output as the original's: <c>Created volume NAME (N MB)</c>, columns NAME SIZE
/// (PATH with <c>-o wide</c> or <c>--json</c>), <c>Removed volume NAME</c>, <c>Copied volume A to B</c>).
/// </summary>
internal static class VolumeCommands
{
    public static Command Create()
    {
        var volume = new Command("volume", "Manage named volumes (ext4 disks for `run --disk @NAME:/path`)");
        volume.Subcommands.Add(CreateVolume());
        volume.Subcommands.Add(List());
        volume.Subcommands.Add(Remove());
        volume.Subcommands.Add(Copy());
        return volume;
    }

    private static Command CreateVolume()
    {
        var name = new Argument<string>("name") { Description = "Volume name: letters, digits, '_', '.', '-', starting with a letter or digit" };
        var size = new Option<long>("--size") { Description = "Size in MB (sparse: it costs only what is written)", DefaultValueFactory = _ => VolumeStore.DefaultSizeMb };
        var json = new Option<bool>("--json") { Description = "Print {name, size, path} as JSON (what the SDKs read)" };
        var command = new Command("create", "Create an empty ext4 volume") { name, size, json };
        command.SetAction(async (parse, ct) =>
        {
            var volumeName = parse.GetValue(name)!;
            using var interrupt = new PullCommand.InterruptScope(ct);
            try
            {
                var volume = await new VolumeStore().CreateAsync(volumeName, parse.GetValue(size), interrupt.Token);
                if (parse.GetValue(json))
                {
                    Console.WriteLine(JsonSerializer.Serialize(VolumeListEntry.Of(volume.Name, volume.SizeBytes, volume.Path), CliJsonContext.Default.VolumeListEntry));
                    return 0;
                }

                Console.WriteLine($"Created volume {volume.Name} ({(volume.SizeBytes / (1024 * 1024)).ToString(CultureInfo.InvariantCulture)} MB)");
                Console.WriteLine($"Path: {volume.Path}");
                return 0;
            }
            catch (OperationCanceledException) when (interrupt.Token.IsCancellationRequested)
            {
                Console.Error.WriteLine($"matchlock: volume create {volumeName} interrupted; nothing was created");
                return ExitCodes.Interrupted;
            }
            catch (Exception ex)
            {
                return CliErrors.Report(ex);
            }
        });
        return command;
    }

    private static Command List()
    {
        var json = new Option<bool>("--json") { Description = "Print a JSON array instead of a table" };
        var output = new Option<string?>("--output", "-o") { Description = "wide: add the PATH column" };
        output.AcceptOnlyFromAmong("wide");
        var command = new Command("ls", "List volumes: NAME SIZE (-o wide: and PATH)") { json, output };
        command.Aliases.Add("list");
        command.SetAction(parse =>
        {
            try
            {
                var volumes = new VolumeStore().List();
                if (parse.GetValue(json))
                {
                    var entries = volumes.Select(v => VolumeListEntry.Of(v.Name, v.SizeBytes, v.Path, v.UsedBytes)).ToList();
                    Console.WriteLine(JsonSerializer.Serialize(entries, CliJsonContext.Default.ListVolumeListEntry));
                    return 0;
                }

                if (parse.GetValue(output) == "wide")
                {
                    Table.Write(Console.Out, ["NAME", "SIZE", "PATH"], [.. volumes.Select(v => new[] { v.Name, ImageSizes.Format(v.SizeBytes), v.Path })]);
                }
                else
                {
                    Table.Write(Console.Out, ["NAME", "SIZE"], [.. volumes.Select(v => new[] { v.Name, ImageSizes.Format(v.SizeBytes) })]);
                }
                return 0;
            }
            catch (Exception ex)
            {
                return CliErrors.Report(ex);
            }
        });
        return command;
    }

    private static Command Remove()
    {
        var names = new Argument<string[]>("name") { Arity = ArgumentArity.OneOrMore, Description = "Volumes to remove (with everything on them)" };
        var command = new Command("rm", "Remove volumes (refused while a sandbox uses one)") { names };
        command.Aliases.Add("remove");
        command.SetAction(parse =>
        {
            var store = new VolumeStore();
            var status = 0;
            foreach (var name in parse.GetValue(names)!)
            {
                try
                {
                    store.Remove(name);
                    Console.WriteLine($"Removed volume {name}");
                }
                catch (Exception ex)
                {
                    status = CliErrors.Report(ex);
                }
            }

            return status;
        });
        return command;
    }

    private static Command Copy()
    {
        var source = new Argument<string>("source") { Description = "A volume name, or a host ext4 image path (anything with a '/', e.g. ./disk.ext4)" };
        var destination = new Argument<string>("destination") { Description = "A new volume name, or a new host file path (an existing directory gets SOURCE.ext4)" };
        var command = new Command(
            "cp",
            "Copy a volume to a new volume, import a host ext4 image as a volume, or export a volume to a host file (sparse; never overwrites)")
        {
            source, destination,
        };
        command.SetAction(async (parse, ct) =>
        {
            using var interrupt = new PullCommand.InterruptScope(ct);
            try
            {
                var (path, volume) = await new VolumeStore().CopyAsync(parse.GetValue(source)!, parse.GetValue(destination)!, interrupt.Token);
                // The original's line first; where it went (and its size) on a second line (ours).
                Console.WriteLine(volume is null
                    ? $"Copied volume {parse.GetValue(source)} to {path}"
                    : $"Copied volume {parse.GetValue(source)} to {volume.Name}\nPath: {path} ({(volume.SizeBytes / (1024 * 1024)).ToString(CultureInfo.InvariantCulture)} MB)");
                return 0;
            }
            catch (OperationCanceledException) when (interrupt.Token.IsCancellationRequested)
            {
                Console.Error.WriteLine("matchlock: volume cp interrupted; nothing was created");
                return ExitCodes.Interrupted;
            }
            catch (Exception ex)
            {
                return CliErrors.Report(ex);
            }
        });
        return command;
    }
}

/// <summary>One row of <c>volume ls --json</c>.</summary>
internal sealed class VolumeListEntry
{
    [JsonPropertyName("name")] public required string Name { get; init; }

    /// <summary>Filesystem size as the original prints it ("64.0 MB"): its SDKs read a string.</summary>
    [JsonPropertyName("size")] public required string Size { get; init; }

    /// <summary>Filesystem size in bytes (ours).</summary>
    [JsonPropertyName("size_bytes")] public long SizeBytes { get; init; }

    /// <summary>Bytes the sparse image really occupies on the host (ours; absent after create).</summary>
    [JsonPropertyName("used")] public long? Used { get; init; }

    [JsonPropertyName("path")] public required string Path { get; init; }

    public static VolumeListEntry Of(string name, long sizeBytes, string path, long? used = null) =>
        new() { Name = name, Size = ImageSizes.Format(sizeBytes), SizeBytes = sizeBytes, Path = path, Used = used };
}
