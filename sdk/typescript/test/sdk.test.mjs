// The SDK's offline suite, in one process and in this order: the unit tests
// against the fake binary, then the contract conformance of what they sent
// and received (which reads the recording the unit tests leave behind).
await import("./unit.mjs");
await import("./conformance.mjs");
