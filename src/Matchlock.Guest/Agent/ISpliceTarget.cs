using Matchlock.Guest.Interop;

namespace Matchlock.Guest.Agent;

/// <summary>A transport that can take bytes straight from a pipe with splice(2) (the virtio port).</summary>
internal interface ISpliceTarget
{
    /// <summary>Moves exactly <paramref name="length"/> bytes (which the pipe holds) into this transport.</summary>
    void SpliceFrom(FdStream pipe, int length);
}
