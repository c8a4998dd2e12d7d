// Test tooling (`@vfsd/core/testing`): a FUSE client over the simulated front-end, the load of the
// benchmarks, waiting for a condition. Never imported by production code.
export * from './fuse-client';
export { runLoad, type LoadSpec, type LoadResult } from './getattr-load';
export * from './dirent-collector';
export * from './wait-for';
