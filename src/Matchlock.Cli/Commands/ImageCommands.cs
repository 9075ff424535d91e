using System.CommandLine;
using System.Globalization;
using Matchlock.Core.Images;

namespace Matchlock.Cli.Commands;

/// <summary><c>matchlock image import|ls|rm</c>.</summary>
internal static class ImageCommands
{
    public static Command Create()
    {
        var image = new Command("image", "Manage local images");
        image.Subcommands.Add(Import());
        image.Subcommands.Add(List());
        image.Subcommands.Add(Remove());
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
                Console.WriteLine($"Imported {record.Tag} ({ShortId(record.Id)}, {FormatSize(record.SizeBytes)})");
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
        var command = new Command("ls", "List local images");
        command.Aliases.Add("list");
        command.SetAction(_ =>
        {
            try
            {
                var rows = new ImageStore().List()
                    .Select(r => new[] { r.Tag, ShortId(r.Id), FormatSize(r.SizeBytes), r.Created.ToLocalTime().ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture), r.Source })
                    .ToList();
                Table.Write(Console.Out, ["TAG", "ID", "SIZE", "CREATED", "SOURCE"], rows);
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

    internal static string FormatSize(long bytes) => bytes switch
    {
        >= 1L << 30 => (bytes / (double)(1L << 30)).ToString("0.0", CultureInfo.InvariantCulture) + " GB",
        >= 1L << 20 => (bytes / (double)(1L << 20)).ToString("0.0", CultureInfo.InvariantCulture) + " MB",
        >= 1L << 10 => (bytes / (double)(1L << 10)).ToString("0.0", CultureInfo.InvariantCulture) + " kB",
        _ => bytes.ToString(CultureInfo.InvariantCulture) + " B",
    };
}
