namespace Matchlock.Guest.Users;

/// <summary>The requested user or group does not exist in the image and is not numeric.</summary>
internal sealed class UserResolutionException(string message) : Exception(message);
