using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Matchlock.Core.Images;

namespace Matchlock.Cli.Commands;

/// <summary><c>matchlock image import|ls|rm|gc</c>.</summary>
internal static class ImageCommands
{
    public static Command Create()
    {
        var image = new Command("image", "Manage local images");
        image.Subcommands.Add(Import());
        image.Subcommands.Add(List());
        image.Subcommands.Add(Remove());
        image.Subcommands.Add(CollectGarbage());
        return image;
    }

    private static Command Import()
    {
        var tag = new Argument<string>("tag") { Description = "Name to store the image under, e.g. myimage:1.0" };
        var command = new Command("import", "Import a `docker save` tarball (legacy or OCI layout) from stdin") { tag };
        command.SetAction(async (parse, ct) =>
        {
            if (!Console.IsInputRedirected)
            {
                Console.Error.WriteLine("matchlock: image import reads a tarball on stdin, e.g. `docker save IMAGE | matchlock image import TAG` or `matchlock image import TAG < image.tar`");
                return ExitCodes.MatchlockError;
            }

            try
            {
                await using var stdin = Console.OpenStandardInput();
                var record = await new ImageStore().ImportAsync(parse.GetValue(tag)!, stdin, ct);
                Console.WriteLine($"Imported {record.Tag} ({ShortId(record.Id)}, {ImageSizes.Format(record.SizeBytes)})");
                return 0;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                return CliErrors.Report(ex);
            }
        });
        return command;
    }

    private static Command List()
    {
        var json = new Option<bool>("--json") { Description = "Print a JSON array instead of a table" };
        var command = new Command("ls", "List local images") { json };
        command.Aliases.Add("list");
        command.SetAction(parse =>
        {
            try
            {
                var images = new ImageStore().List();
                if (parse.GetValue(json))
                {
                    var entries = images.Select(r => new ImageListEntry
                    {
                        Tag = r.Tag,
                        Id = r.Id,
                        Digest = r.Digest,
                        Size = r.SizeBytes,
                        Created = r.Created,
                        Source = r.Source,
                    }).ToList();
                    Console.WriteLine(JsonSerializer.Serialize(entries, CliJsonContext.Default.ListImageListEntry));
                    return 0;
                }

                var rows = images
                    .Select(r => new[]
                    {
                        r.Tag, r.Digest is null ? "<none>" : ShortId(r.Digest), ShortId(r.Id), ImageSizes.Format(r.SizeBytes),
                        r.Created.ToLocalTime().ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture), r.Source,
                    })
                    .ToList();
                Table.Write(Console.Out, ["TAG", "DIGEST", "ID", "SIZE", "CREATED", "SOURCE"], rows);
                return 0;
            }
            catch (Exception ex)
            {
                return CliErrors.Report(ex);
            }
        });
        return command;
    }

    private static Command CollectGarbage()
    {
        var command = new Command("gc", "Delete layers and files no stored image uses");
        command.SetAction(async (_, ct) =>
        {
            try
            {
                var result = await new ImageStore().CollectGarbageAsync(reason => Console.Error.WriteLine($"matchlock: {reason}"), ct);
                Console.WriteLine(
                    $"Removed {result.Blobs} blob{(result.Blobs == 1 ? "" : "s")} and {result.RootFilesystems} root filesystem{(result.RootFilesystems == 1 ? "" : "s")}, "
                    + $"freed {ImageSizes.Format(result.BytesFreed)}");
                return 0;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                return CliErrors.Report(ex);
            }
        });
        return command;
    }

    private static Command Remove()
    {
        var refs = new Argument<string[]>("image") { Arity = ArgumentArity.OneOrMore, Description = "Image tags to remove" };
        var command = new Command("rm", "Remove local images") { refs };
        command.SetAction(parse =>
        {
            var store = new ImageStore();
            var status = 0;
            foreach (var reference in parse.GetValue(refs)!)
            {
                try
                {
                    if (store.Remove(reference))
                    {
                        Console.WriteLine($"Removed {reference}");
                    }
                    else
                    {
                        store.Resolve(reference); // throws the "not found; these exist" message
                    }
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

    private static string ShortId(string id) => id.StartsWith("sha256:", StringComparison.Ordinal) ? id[7..Math.Min(id.Length, 19)] : id;
}

/// <summary>One row of <c>image ls --json</c>.</summary>
internal sealed class ImageListEntry
{
    [JsonPropertyName("tag")] public required string Tag { get; init; }
    [JsonPropertyName("id")] public required string Id { get; init; }
    [JsonPropertyName("digest")] public string? Digest { get; init; }
    [JsonPropertyName("size")] public long Size { get; init; }
    [JsonPropertyName("created")] public DateTimeOffset Created { get; init; }
    [JsonPropertyName("source")] public required string Source { get; init; }
}
