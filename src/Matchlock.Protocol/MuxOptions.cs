namespace Matchlock.Protocol;

/// <summary>Tuning of a <see cref="MuxConnection"/>. Both ends must agree on <see cref="InitialWindow"/>.</summary>
public sealed record MuxOptions
{
    /// <summary>Bytes a sender may have outstanding per stream channel before it waits for credit.</summary>
    public int InitialWindow { get; init; } = 1024 * 1024;

    /// <summary>Largest data frame payload; a write is split into frames of at most this size.</summary>
    public int MaxDataFrame { get; init; } = 64 * 1024;

    public static MuxOptions Default { get; } = new();
}
