using System.Text.Json.Serialization;

namespace Matchlock.Protocol.Messages;

/// <summary>Control messages the host sends on an exec stream while it runs.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type")]
[JsonDerivedType(typeof(SignalControl), "signal")]
[JsonDerivedType(typeof(ResizeControl), "resize")]
[JsonDerivedType(typeof(CancelControl), "cancel")]
public abstract record ExecControl;

/// <summary>Deliver a signal to the command's process group.</summary>
public sealed record SignalControl(int Signal) : ExecControl;

/// <summary>New PTY window size.</summary>
public sealed record ResizeControl(int Rows, int Cols) : ExecControl;

/// <summary>SIGTERM to the process group, SIGKILL after the grace.</summary>
public sealed record CancelControl(int GraceMs) : ExecControl;
