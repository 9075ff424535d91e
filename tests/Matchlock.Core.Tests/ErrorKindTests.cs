using System.Reflection;
using Matchlock.Core.Images;
using Matchlock.Core.Images.Registry;
using Matchlock.Core.Kernel;
using Matchlock.Core.Network.Plumbing;
using Matchlock.Core.Owner;
using Matchlock.Core.PortForwarding;
using Matchlock.Core.Sandboxes;
using Matchlock.Core.State;
using Matchlock.Core.Vm;
using Matchlock.Core.Volumes;

namespace Matchlock.Core.Tests;

/// <summary>
/// Unit tier: every error Core raises on purpose has one base, <see cref="MatchlockException"/>,
/// and a kind that says what the caller can do next — the CLI and the RPC server map by it.
/// </summary>
public sealed class ErrorKindTests
{
    [Fact]
    public void Every_public_exception_of_core_is_a_matchlock_exception()
    {
        var strays = typeof(MatchlockException).Assembly.GetTypes()
            .Where(t => typeof(Exception).IsAssignableFrom(t) && !typeof(MatchlockException).IsAssignableFrom(t))
            .Select(t => t.FullName)
            .ToList();
        Assert.Empty(strays);
    }

    [Theory]
    [InlineData(typeof(ImageNotFoundException), MatchlockErrorKind.StartFailed)]
    [InlineData(typeof(ImageFormatException), MatchlockErrorKind.StartFailed)]
    [InlineData(typeof(ImageStoreException), MatchlockErrorKind.StartFailed)]
    [InlineData(typeof(RegistryException), MatchlockErrorKind.StartFailed)]
    [InlineData(typeof(KernelNotFoundException), MatchlockErrorKind.StartFailed)]
    [InlineData(typeof(ModuleResolutionException), MatchlockErrorKind.StartFailed)]
    [InlineData(typeof(AccelUnavailableException), MatchlockErrorKind.StartFailed)]
    [InlineData(typeof(VmStartException), MatchlockErrorKind.StartFailed)]
    [InlineData(typeof(NetworkNamespaceException), MatchlockErrorKind.StartFailed)]
    [InlineData(typeof(SandboxStartException), MatchlockErrorKind.StartFailed)]
    [InlineData(typeof(OwnerUnavailableException), MatchlockErrorKind.SandboxGone)]
    [InlineData(typeof(OwnerProtocolException), MatchlockErrorKind.SandboxGone)]
    [InlineData(typeof(SandboxGoneException), MatchlockErrorKind.SandboxGone)]
    [InlineData(typeof(GuestOperationException), MatchlockErrorKind.OperationFailed)]
    [InlineData(typeof(OwnerOperationException), MatchlockErrorKind.OperationFailed)]
    [InlineData(typeof(PortForwardException), MatchlockErrorKind.OperationFailed)]
    [InlineData(typeof(VolumeException), MatchlockErrorKind.OperationFailed)]
    [InlineData(typeof(VmStateException), MatchlockErrorKind.OperationFailed)]
    [InlineData(typeof(InvalidInputException), MatchlockErrorKind.InvalidInput)]
    public void Each_error_says_what_the_caller_can_do_next(Type type, MatchlockErrorKind kind)
    {
        var error = (MatchlockException)Activator.CreateInstance(
            type, BindingFlags.Public | BindingFlags.Instance | BindingFlags.CreateInstance | BindingFlags.OptionalParamBinding,
            binder: null, args: ["what happened, and the remedy"], culture: null)!;
        Assert.Equal(kind, error.Kind);
        Assert.Equal("what happened, and the remedy", error.Message);
    }
}
