namespace Matchlock.Core.Volumes;

/// <summary>
/// A volume operation was refused or failed (bad name, unknown or existing volume, volume in use,
/// formatting failed); the message says which and what to do. Nothing was changed.
/// </summary>
public sealed class VolumeException : OperationFailedException
{
    public VolumeException(string message) : base(message)
    {
    }

    public VolumeException(string message, Exception? inner) : base(message, inner)
    {
    }
}
