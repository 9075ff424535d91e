using System.CommandLine;
using System.Runtime.InteropServices;
using Matchlock.Cli.Terminal;
using Matchlock.Core.Images;
using Matchlock.Core.Images.Registry;

namespace Matchlock.Cli.Commands;

/// <summary><c>matchlock pull</c> and <c>matchlock build IMAGE</c>: fetch an image and prepare its root filesystem.</summary>
internal static class PullCommand
{
    public static Command CreatePull()
    {
        var image = new Argument<string>("image") { Description = "Image to pull, e.g. alpine, python:3.12-alpine, ghcr.io/org/app@sha256:…" };
        var force = new Option<bool>("--force") { Description = "Download every layer and rebuild the root filesystem even if they are stored" };
        var tag = new Option<string?>("--tag", "-t") { Description = "Also store the image under this local name" };
        var platform = PlatformOption();
        var command = new Command("pull", "Pull an image from a registry and prepare its root filesystem") { image, force, tag, platform };
        command.SetAction((parse, ct) => RunAsync(parse.GetValue(image)!, parse.GetValue(force), parse.GetValue(tag), parse.GetValue(platform), ct));
        return command;
    }

    public static Command CreateBuild()
    {
        var image = new Argument<string>("image") { Description = "Image to pull and prepare ahead of time" };
        var platform = PlatformOption();
        var force = new Option<bool>("--no-cache") { Description = "Download and rebuild even if stored" };
        var command = new Command("build", "Prepare an image ahead of time (pull it and build its root filesystem)") { image, platform, force };
        command.SetAction((parse, ct) =>
        {
            var target = parse.GetValue(image)!;
            if (Directory.Exists(target))
            {
                Console.Error.WriteLine(
                    $"matchlock: \"{target}\" is a directory: building from a Dockerfile is not supported yet; "
                    + "`matchlock build IMAGE` pulls and prepares a registry image");
                return Task.FromResult(ExitCodes.MatchlockError);
            }

            return RunAsync(target, parse.GetValue(force), null, parse.GetValue(platform), ct);
        });
        return command;
    }

    private static Option<string?> PlatformOption() =>
        new("--platform") { Description = "Platform of a multi-platform image, os/arch[/variant] (default linux/amd64)" };

    private static async Task<int> RunAsync(string reference, bool force, string? tag, string? platform, CancellationToken cancellationToken)
    {
        using var interrupt = new InterruptScope(cancellationToken);
        var ct = interrupt.Token;
        try
        {
            var options = new PullOptions
            {
                Force = force,
                ExtraTag = tag,
                Platform = platform is null ? null : Platform.Parse(platform),
            };
            var result = await PullProgress.RunAsync(observer =>
                new ImageStore().PullAsync(reference, options with { Observer = observer }, ct));
            Console.WriteLine($"Digest: {result.RepoDigest}");
            Console.WriteLine(result.UpToDate
                ? $"Status: Image is up to date for {result.Image.Tag}"
                : $"Status: Downloaded newer image for {result.Image.Tag}");
            Console.WriteLine(result.Image.Tag);
            return 0;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Console.Error.WriteLine($"matchlock: pull of {reference} interrupted; the image store is unchanged");
            return ExitCodes.Interrupted;
        }
        catch (Exception ex)
        {
            return CliErrors.Report(ex);
        }
    }

    /// <summary>
    /// For <c>run</c>: the image from the store, pulled first when <paramref name="pull"/> or when
    /// it is not stored and names a registry image.
    /// </summary>
    public static async Task<ImageRecord> EnsureAsync(string reference, bool pull, CancellationToken cancellationToken)
    {
        using var interrupt = new InterruptScope(cancellationToken);
        var ct = interrupt.Token;
        var store = new ImageStore();
        if (!pull && store.Find(reference) is { } stored)
        {
            return stored;
        }

        try
        {
            var result = await PullProgress.RunAsync(observer =>
                store.PullAsync(reference, new PullOptions { Observer = observer }, ct));
            return result.Image;
        }
        catch (RegistryException e) when (!pull)
        {
            var local = store.List().Select(r => r.Tag).ToList();
            throw new ImageNotFoundException(
                $"image \"{reference}\" is not stored locally ({(local.Count == 0 ? "no images are stored yet" : "local images: " + string.Join(", ", local))}) "
                + $"and pulling it failed: {e.Message}",
                e);
        }
    }

    /// <summary>
    /// Ctrl-C and SIGTERM cancel the pull (which then deletes its staging files) instead of
    /// killing the process mid-write; the CLI turns off System.CommandLine's own handling.
    /// </summary>
    internal sealed class InterruptScope : IDisposable
    {
        private readonly CancellationTokenSource _cts;
        private readonly PosixSignalRegistration _sigint;
        private readonly PosixSignalRegistration _sigterm;

        public InterruptScope(CancellationToken outer)
        {
            _cts = CancellationTokenSource.CreateLinkedTokenSource(outer);
            _sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Cancel);
            _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Cancel);
        }

        public CancellationToken Token => _cts.Token;

        public void Dispose()
        {
            _sigint.Dispose();
            _sigterm.Dispose();
            _cts.Dispose();
        }

        private void Cancel(PosixSignalContext context)
        {
            context.Cancel = true;
            _cts.Cancel();
        }
    }
}
