using System.Globalization;
using Matchlock.Core.Interop;

namespace Matchlock.Core.State;

/// <summary>
/// Who owns a VM directory: PID plus process start time, so a reused PID is not mistaken for the
/// owner (docs/ARCHITECTURE.md D9). Written as <c>owner</c> in the VM directory: "PID STARTTIME REMOVE".
/// </summary>
internal static class OwnerRecord
{
    public const string FileName = "owner";

    public static void Write(string vmDir, bool removeOnExit)
    {
        var pid = Environment.ProcessId;
        var text = string.Create(CultureInfo.InvariantCulture, $"{pid} {OwnerNative.ProcessStartTime(pid)} {(removeOnExit ? "rm" : "keep")}\n");
        File.WriteAllText(Path.Combine(vmDir, FileName), text);
    }

    /// <summary>True when the recorded owner is still running; false when it is gone or unreadable.</summary>
    public static bool IsOwnerAlive(string vmDir, out bool removeOnExit) => IsOwnerAlive(vmDir, out removeOnExit, out _);

    /// <inheritdoc cref="IsOwnerAlive(string, out bool)"/>
    /// <param name="pid">The owner's PID when it is alive, else 0.</param>
    public static bool IsOwnerAlive(string vmDir, out bool removeOnExit, out int pid)
    {
        removeOnExit = false;
        pid = 0;
        string[] parts;
        try
        {
            parts = File.ReadAllText(Path.Combine(vmDir, FileName)).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        }
        catch (IOException)
        {
            return false;
        }

        if (parts.Length < 3 || !int.TryParse(parts[0], CultureInfo.InvariantCulture, out var recorded))
        {
            return false;
        }

        removeOnExit = parts[2] == "rm";
        if (OwnerNative.ProcessStartTime(recorded) is not { } start || start != parts[1])
        {
            return false;
        }

        pid = recorded;
        return true;
    }
}
