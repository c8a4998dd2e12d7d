// Entry point of a request-queue thread: this thread owns one request queue's ring (its guest
// memory mapped here, its kick eventfd watched by this thread's event loop, its call eventfd written
// from here), runs its request actors, and answers with the filesystem's queue part what that part
// can answer (GETATTR, READ, WRITE on inodes and handles the main thread shares). Everything else
// goes to the main thread as bytes and comes back as a reply, pushed here.
import { parentPort, workerData } from 'node:worker_threads';
import {
  EventFdWatcher,
  GuestMemory,
  MemoryRegion,
  Virtqueue,
  bindThreadToCpus,
  closeFd,
  currentCpu,
  gettid,
  type DescriptorChain,
  type Logger,
} from '@vfsd/vhost';
import { Inspection } from '../actors/inspection';
import type { RequestRun } from '../actors/request-run';
import type { QueueFs } from '../filesystem';
import { FuseServer } from '../server/fuse-server';
import { FuseSession, QueueRuntime } from '../virtio-fs/queue-runtime';
import { BatchBuilder, forEachItem, transferOf, type PackedBatch } from './batch';
import { QueueCounter, type QueueThreadInit, type SharedRegion, type ToMain, type ToThread } from './messages';

if (!parentPort) throw new Error('thread-main must run in a worker thread');
const port = parentPort;
const init = workerData as QueueThreadInit;
const post = (m: ToMain, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer);

if (init.cpus.length > 0) bindThreadToCpus(init.cpus);
const counters = new Float64Array(init.counters);
counters[QueueCounter.tid] = gettid();

const log: Logger = {
  error: (message) => post({ type: 'log', level: 'error', message }),
  warn: (message) => post({ type: 'log', level: 'warn', message }),
  info: (message) => post({ type: 'log', level: 'info', message }),
  debug: (message) => post({ type: 'log', level: 'debug', message }),
};

/** Maps the regions (each MemoryRegion keeps its own copy of the fd; the one posted here is closed). */
function mapRegions(regions: readonly SharedRegion[]): MemoryRegion[] {
  try {
    return regions.map((r) => new MemoryRegion(r.desc, r.fd));
  } finally {
    regions.forEach((r) => closeFd(r.fd));
  }
}

let regions = mapRegions(init.regions);
/** Regions of an old table, unmapped once no chain popped with them is in flight. */
let retired: MemoryRegion[] = [];

const vq = new Virtqueue(init.index);
vq.size = init.size;
vq.addresses = init.addresses;
vq.features = init.features;
vq.callFd = init.callFd;
vq.attach(new GuestMemory(regions));
vq.syncUsedIdx();
vq.lastAvailIdx = init.lastAvailIdx;
vq.enabled = true;

// eslint-disable-next-line @typescript-eslint/no-require-imports
const queueFs = (require(init.fs.module) as { createQueueFs(data: unknown): QueueFs }).createQueueFs(init.fs.data);
const session = new FuseSession(new FuseServer(queueFs), log, new Inspection());
const runtime = new QueueRuntime(vq, session);
runtime.servedHere = null; // until the main thread's INIT
runtime.notifyWithinDrain = false;
runtime.mayPoll = () => pending.size === 0 && outgoing.size === 0;
const tid = counters[QueueCounter.tid];
if (init.logRequests) session.onRequestDone = (entry) => post({ type: 'requestDone', entry: { ...entry, thread: tid } });
// What the guest got wrong here is counted (and logged, rate-limited) with the main thread's faults.
session.faults.record = (kind, detail) => post({ type: 'fault', kind, detail });

/** Chains whose requests the main thread is serving, by the id they went with. */
const pending = new Map<number, DescriptorChain>();
let nextId = 1;
const outgoing = new BatchBuilder();
let forwarded = 0;
let stopping = false;

runtime.elsewhere = (run: RequestRun): void => {
  session.liveRequests--;
  const chain = run.chain;
  const id = nextId;
  nextId = nextId >= 0x7fffffff ? 1 : nextId + 1;
  pending.set(id, chain);
  outgoing.add(id, chain.readable, chain.readableLength, chain.writableLength);
  forwarded++;
};

function flushOutgoing(): void {
  const batch = outgoing.take();
  if (batch) post({ type: 'requests', batch }, transferOf(batch));
}

function publishCounters(): void {
  counters[QueueCounter.cpu] = currentCpu();
  counters[QueueCounter.lastAvailIdx] = vq.lastAvailIdx;
  counters[QueueCounter.usedIdx] = vq.usedIdx;
  counters[QueueCounter.inFlight] = vq.inFlight;
  counters[QueueCounter.kicks] = vq.kicks;
  counters[QueueCounter.notifications] = vq.notifications;
  counters[QueueCounter.servedHere] = session.completed;
  counters[QueueCounter.forwarded] = forwarded;
}

function serveRing(): void {
  if (stopping) return;
  runtime.drain();
  flushOutgoing();
  publishCounters();
}

function replied(batch: PackedBatch): void {
  forEachItem(batch, (id, bytes) => {
    const chain = pending.get(id);
    if (!chain) return;
    pending.delete(id);
    if (bytes.length > 0) chain.write(bytes);
    vq.complete(chain, bytes.length);
  });
  vq.notify();
  publishCounters();
}

function remap(next: readonly SharedRegion[]): void {
  retired.push(...regions);
  regions = mapRegions(next);
  vq.attach(new GuestMemory(regions));
  collectRetired();
}

function collectRetired(): void {
  if (retired.length === 0 || vq.inFlight > 0) return;
  for (const r of retired) r.unmap();
  retired = [];
}

const kick = new EventFdWatcher(
  init.kickFd,
  () => {
    vq.kicks++;
    serveRing();
  },
  (err) => log.error(`queue ${init.index}: kick fd: ${err.message}`),
);

let stopped = false;

function finishStop(): void {
  if (stopped) return;
  stopped = true;
  vq.notify(); // the last replies' notification, before the call fd closes
  kick.close();
  publishCounters();
  post({ type: 'stopped', lastAvailIdx: vq.lastAvailIdx, usedIdx: vq.usedIdx });
  for (const r of [...regions, ...retired]) r.unmap();
  regions = [];
  retired = [];
  vq.detach();
  closeFd(vq.callFd);
  vq.callFd = null;
  port.close();
}

const settled = vq.onSettled;
vq.onSettled = () => {
  settled?.();
  collectRetired();
  // After the push that settled the ring, its notification is still to come: stop after it.
  if (stopping) queueMicrotask(finishStop);
};

port.on('message', (m: ToThread) => {
  switch (m.type) {
    case 'replies':
      replied(m.batch);
      return;
    case 'session':
      session.server.adopt(m.minor, m.setxattrExt);
      runtime.servedHere = queueFs.opcodes;
      return;
    case 'callFd':
      closeFd(vq.callFd);
      vq.callFd = m.fd;
      return;
    case 'memory':
      remap(m.regions);
      return;
    case 'stop':
      stopping = true;
      runtime.beginStop(m.mode);
      flushOutgoing();
      if (vq.inFlight === 0) finishStop();
      return;
  }
});

serveRing(); // chains made available before the start
