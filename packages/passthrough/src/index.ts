export { PassthroughFs, CACHE_TIMEOUT, probeFileHandles, type CacheMode, type PassthroughOptions } from './passthrough-fs';
export type { FileHandleMode } from './inode-table';
export { WorkerPool, type WorkerPoolOptions, type SubmitOptions, type ShutdownReport } from './pool/worker-pool';
export { poolWorkerMachine, type Lane, type PoolWorkerContext, type PoolWorkerEvent } from './pool/pool-worker.machine';
export type { PoolWorkerActor } from './pool/pool-worker';
export type { Op, OpKind, OpResult, OpTable } from './pool/ops';
export type { StatRecord } from './sys/stat';
export type { FlockRecord } from './sys/flock-struct';
export { CANCEL_SIGNAL } from './pool/cancel-signal';
