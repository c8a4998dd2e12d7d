// What a request-queue thread and the main thread say to each other. Ring state, kicks, calls and
// guest memory are the thread's; the main thread keeps the vhost-user session and the requests the
// thread's filesystem cannot answer, which come to it as bytes and go back as reply bytes.
import type { MemoryRegionDesc, RingAddresses, RingFeatures } from '@vfsd/vhost';
import type { QueueThreadPart } from '../filesystem';
import type { StopMode } from '../actors/virtqueue.machine';
import type { GuestFaultKind } from '../virtio-fs/guest-faults';
import type { RequestLogEntry } from '../virtio-fs/queue-runtime';
import type { PackedBatch } from './batch';

/** A region of guest memory for the thread to map: its descriptor and a copy of its fd (the thread closes it). */
export interface SharedRegion {
  desc: MemoryRegionDesc;
  fd: number;
}

export interface QueueThreadInit {
  index: number;
  size: number;
  addresses: RingAddresses;
  features: RingFeatures;
  lastAvailIdx: number;
  /** Copies of the ring's fds (the thread closes them). */
  kickFd: number;
  callFd: number | null;
  regions: SharedRegion[];
  fs: QueueThreadPart;
  /** The main thread logs every request (debug): the thread reports those it answered. */
  logRequests: boolean;
  /** CPUs the thread binds itself to (none: wherever the kernel runs it). */
  cpus: number[];
  /** Shared counters (QueueCounter indexes), read by the main thread for the inspector. */
  counters: SharedArrayBuffer;
}

/** Float64 slots of QueueThreadInit.counters, written by the thread after each drain. */
export const QueueCounter = {
  tid: 0,
  cpu: 1,
  lastAvailIdx: 2,
  usedIdx: 3,
  inFlight: 4,
  kicks: 5,
  notifications: 6,
  /** Requests answered in the thread. */
  servedHere: 7,
  /** Requests sent to the main thread. */
  forwarded: 8,
} as const;
export const QUEUE_COUNTERS = 9;

/**
 * Requests the thread hands over (a batch item each: its readable bytes, id, and how many reply bytes
 * its chain holds), and their replies (the reply bytes, id, 0).
 */
export type ToMain =
  | { type: 'requests'; batch: PackedBatch }
  | { type: 'log'; level: 'error' | 'warn' | 'info' | 'debug'; message: string }
  | { type: 'fault'; kind: GuestFaultKind; detail: string }
  | { type: 'requestDone'; entry: RequestLogEntry }
  | { type: 'stopped'; lastAvailIdx: number; usedIdx: number };

export type ToThread =
  | { type: 'replies'; batch: PackedBatch }
  /** INIT was answered: the thread decodes with the negotiated options and may serve requests. */
  | { type: 'session'; minor: number; setxattrExt: boolean }
  | { type: 'callFd'; fd: number | null }
  | { type: 'memory'; regions: SharedRegion[] }
  | { type: 'stop'; mode: StopMode };
