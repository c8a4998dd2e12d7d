// The wire ABI and the FileSystem boundary, with no actors, rings or xstate behind them: what a
// filesystem (and the passthrough's pool workers) imports as `@vfsd/core/abi`.
export * from './fuse';
export * from './filesystem';
export * from './io-views';
export * from './awaitable';
