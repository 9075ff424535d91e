using Matchlock.Core.Images;
using Matchlock.Core.Images.Registry;
using Spectre.Console;

namespace Matchlock.Cli.Terminal;

/// <summary>
/// Shows a pull on stderr: per-layer progress bars (Spectre.Console) when stderr is a terminal,
/// docker's plain status lines otherwise (logs, CI, pipes). stdout stays for the result.
/// </summary>
internal static class PullProgress
{
    /// <summary>Runs <paramref name="pull"/> with an observer that draws its progress.</summary>
    public static async Task<T> RunAsync<T>(Func<PullObserver, Task<T>> pull)
    {
        if (Environment.GetEnvironmentVariable("MATCHLOCK_DEBUG_TIMINGS") == "1")
        {
            return await pull(new TimingObserver(new PlainObserver(Console.Error), Console.Error));
        }

        if (Console.IsErrorRedirected)
        {
            return await pull(new PlainObserver(Console.Error));
        }

        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(Console.Error),
            Ansi = AnsiSupport.Detect,
            ColorSystem = ColorSystemSupport.Detect,
            Interactive = InteractionSupport.Yes,
        });
        return await console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(
                new TaskDescriptionColumn { Alignment = Justify.Left },
                new ProgressBarColumn(),
                new DownloadedColumn(),
                new TransferSpeedColumn(),
                new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                var bars = new BarsObserver(ctx);
                var result = await pull(bars);
                bars.Finish();
                return result;
            });
    }

    private static string Short(string digest) => digest.StartsWith("sha256:", StringComparison.Ordinal) ? digest[7..19] : digest;

    /// <summary>Plain lines plus each phase's duration (MATCHLOCK_DEBUG_TIMINGS=1).</summary>
    private sealed class TimingObserver(PullObserver inner, TextWriter output) : PullObserver
    {
        public override void Resolved(ImageReference reference, PulledManifest manifest) => inner.Resolved(reference, manifest);

        public override void Waiting(string reason) => inner.Waiting(reason);

        public override void Layer(int index, LayerState state) => inner.Layer(index, state);

        public override void Packing() => inner.Packing();

        public override void Timing(string phase, TimeSpan elapsed) =>
            output.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"timing: {phase} {elapsed.TotalMilliseconds:0} ms"));
    }

    /// <summary>One status line per layer change, as `docker pull` prints when not on a terminal.</summary>
    private sealed class PlainObserver(TextWriter output) : PullObserver
    {
        private readonly Lock _gate = new();
        private IReadOnlyList<BlobDescriptor> _layers = [];

        public override void Resolved(ImageReference reference, PulledManifest manifest)
        {
            _layers = manifest.Layers;
            Write($"Pulling {reference.DisplayName} ({manifest.Layers.Count} layer{(manifest.Layers.Count == 1 ? "" : "s")}, "
                + $"{ImageSizes.Format(manifest.Layers.Sum(l => l.Size))})");
        }

        public override void Waiting(string reason) => Write($"Waiting: {reason}");

        public override void Layer(int index, LayerState state)
        {
            var text = state switch
            {
                LayerState.Cached => "Already exists",
                LayerState.Downloaded => "Download complete",
                LayerState.Done => "Pull complete",
                _ => null,
            };
            if (text is not null && index < _layers.Count)
            {
                Write($"{Short(_layers[index].Digest)}: {text}");
            }
        }

        public override void Packing() => Write("Writing the root filesystem");

        private void Write(string line)
        {
            lock (_gate)
            {
                output.WriteLine(line);
                output.Flush();
            }
        }
    }

    /// <summary>A progress bar per layer (bytes downloaded) plus one for packing the root filesystem.</summary>
    private sealed class BarsObserver(ProgressContext context) : PullObserver
    {
        private readonly Lock _gate = new();
        private readonly List<ProgressTask> _phases = [];
        private ProgressTask[] _tasks = [];
        private string[] _names = [];

        public override void Resolved(ImageReference reference, PulledManifest manifest)
        {
            lock (_gate)
            {
                _names = [.. manifest.Layers.Select(l => Short(l.Digest))];
                _tasks = [.. manifest.Layers.Select((l, i) => context.AddTask(Describe(i, "waiting"), autoStart: false, maxValue: Math.Max(1, l.Size)))];
            }
        }

        public override void Waiting(string reason)
        {
            lock (_gate)
            {
                var task = context.AddTask(Markup.Escape(reason), autoStart: true, maxValue: 1);
                task.IsIndeterminate = true;
                _phases.Add(task);
            }
        }

        public override void Layer(int index, LayerState state)
        {
            lock (_gate)
            {
                if (index >= _tasks.Length)
                {
                    return;
                }

                var task = _tasks[index];
                switch (state)
                {
                    case LayerState.Cached:
                        task.Description = Describe(index, "already exists");
                        task.Value = task.MaxValue;
                        task.StopTask();
                        break;
                    case LayerState.Downloading:
                        task.Description = Describe(index, "downloading");
                        task.StartTask();
                        break;
                    case LayerState.Downloaded:
                        task.Value = task.MaxValue;
                        task.Description = Describe(index, "downloaded");
                        break;
                    case LayerState.Extracting:
                        task.Description = Describe(index, task.Value >= task.MaxValue ? "extracting" : "downloading, extracting");
                        break;
                    case LayerState.Done:
                        task.Value = task.MaxValue;
                        task.Description = Describe(index, "pull complete");
                        task.StopTask();
                        break;
                    case LayerState.Queued:
                    default:
                        break;
                }
            }
        }

        public override void LayerBytes(int index, long downloaded)
        {
            lock (_gate)
            {
                if (index < _tasks.Length)
                {
                    _tasks[index].Value = downloaded;
                }
            }
        }

        public override void Packing()
        {
            lock (_gate)
            {
                var task = context.AddTask("writing the root filesystem", autoStart: true, maxValue: 1);
                task.IsIndeterminate = true;
                _phases.Add(task);
            }
        }

        /// <summary>The pull succeeded: phases still spinning (waiting, packing) are done too.</summary>
        public void Finish()
        {
            lock (_gate)
            {
                foreach (var task in _phases)
                {
                    task.IsIndeterminate = false;
                    task.Value = task.MaxValue;
                    task.StopTask();
                }
            }
        }

        private string Describe(int index, string state) => $"{_names[index]}: {state}";
    }
}
