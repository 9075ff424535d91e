using System.Runtime.CompilerServices;

// bench/boot/Floor boots through the same internal command-line builder and the trivial busybox
// initramfs, so its floor is measured on exactly the machine the backend starts.
[assembly: InternalsVisibleTo("Matchlock.Bench.Floor")]
