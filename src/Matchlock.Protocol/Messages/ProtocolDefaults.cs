namespace Matchlock.Protocol.Messages;

/// <summary>The terminal size an exec gets when the caller says none (as the original's SDKs: 24×80).</summary>
public static class TerminalDefaults
{
    public const int Rows = 24;

    public const int Cols = 80;
}

/// <summary>
/// The error codes a guest reply carries besides errno names (ENOENT, EACCES, …): the host tells
/// the cause of a failed exec or port connect apart by these.
/// </summary>
public static class GuestErrorCodes
{
    /// <summary>The working directory is not absolute, could not be created, or does not exist.</summary>
    public const string WorkingDirectory = "ECWD";

    /// <summary>The user or group is not known in the image.</summary>
    public const string User = "EUSER";

    /// <summary>Nothing listens on the guest port (port_connect).</summary>
    public const string ConnectionRefused = "ECONNREFUSED";
}
