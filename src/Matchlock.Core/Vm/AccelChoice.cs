namespace Matchlock.Core.Vm;

/// <summary>The accelerator chosen for this host.</summary>
/// <param name="Accel">What to put in <see cref="VmSpec.Accel"/>.</param>
/// <param name="Notice">
/// A one-line message for the CLI to print on stderr when <c>auto</c> fell back to TCG; null
/// when the user's choice was honoured as asked.
/// </param>
public sealed record AccelChoice(VmAccel Accel, string? Notice);
