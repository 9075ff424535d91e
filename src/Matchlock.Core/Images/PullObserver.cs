using Matchlock.Core.Images.Registry;

namespace Matchlock.Core.Images;

/// <summary>Where a layer is in a pull.</summary>
public enum LayerState
{
    /// <summary>Waiting for a download slot.</summary>
    Queued,

    /// <summary>Already in the store from an earlier pull (shared layer): nothing to download.</summary>
    Cached,
    Downloading,
    Downloaded,

    /// <summary>Being decompressed and applied to the root filesystem (possibly while it downloads).</summary>
    Extracting,

    /// <summary>Downloaded and applied.</summary>
    Done,
}

/// <summary>
/// Hears what a pull does, for a progress display. Called from several threads (one per
/// download) and often (every chunk); implementations must be thread-safe and cheap. The
/// defaults do nothing.
/// </summary>
public class PullObserver
{
    /// <summary>The reference resolved to <paramref name="manifest"/>; <see cref="PulledManifest.Layers"/> numbers the layers below.</summary>
    public virtual void Resolved(ImageReference reference, PulledManifest manifest)
    {
    }

    /// <summary>The pull waits for something outside it (another process preparing the same image, gc).</summary>
    public virtual void Waiting(string reason)
    {
    }

    public virtual void Layer(int index, LayerState state)
    {
    }

    /// <summary>Bytes of layer <paramref name="index"/> downloaded so far.</summary>
    public virtual void LayerBytes(int index, long downloaded)
    {
    }

    /// <summary>All layers are applied; the root filesystem image is being written.</summary>
    public virtual void Packing()
    {
    }

    /// <summary>A phase of the pull finished after <paramref name="elapsed"/> (for MATCHLOCK_DEBUG_TIMINGS and benchmarks).</summary>
    public virtual void Timing(string phase, TimeSpan elapsed)
    {
    }
}

/// <summary>How to pull.</summary>
public sealed record PullOptions
{
    /// <summary>Which image of a multi-platform index; linux/amd64 when null.</summary>
    public Platform? Platform { get; init; }

    /// <summary>Download every blob and rebuild the root filesystem even when the store has them.</summary>
    public bool Force { get; init; }

    /// <summary>A local name to tag the image with as well (<c>pull -t</c>).</summary>
    public string? ExtraTag { get; init; }

    public RegistryClientOptions? Registry { get; init; }

    public PullObserver? Observer { get; init; }
}

/// <summary>What a pull did.</summary>
/// <param name="Image">The stored image, under the pulled name.</param>
/// <param name="RepoDigest">The digest the reference resolved to at the registry.</param>
/// <param name="UpToDate">The name already pointed at this exact image; nothing was downloaded or changed.</param>
public sealed record PullResult(ImageRecord Image, string RepoDigest, bool UpToDate);
