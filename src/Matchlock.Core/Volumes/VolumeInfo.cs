namespace Matchlock.Core.Volumes;

/// <summary>One named volume, as <c>volume ls</c> shows it.</summary>
/// <param name="Name">The name given to <c>volume create</c>.</param>
/// <param name="Path">Its ext4 image, <c>VolumesDir/NAME.ext4</c>.</param>
/// <param name="SizeBytes">The filesystem's size (the image's apparent size).</param>
/// <param name="UsedBytes">What the sparse image really occupies on the host.</param>
public sealed record VolumeInfo(string Name, string Path, long SizeBytes, long UsedBytes);
