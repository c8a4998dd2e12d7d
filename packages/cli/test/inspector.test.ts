// The inspector's parts without a browser: the sampler (bounded, whatever the event rate), the trace
// recorder (JSON lines that replay), the charts read from the machines, and the HTTP server (loopback
// only, page files, the live stream, the adaptive subscription).
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { createActor } from 'xstate';
import { Inspection, deviceMachine, requestLogic, type VirtioFsDevice } from '@vfsd/core';
import { poolWorkerMachine } from '@vfsd/passthrough';
import { Sampler, TraceRecorder, allCharts, machineChart, startInspector } from '../src/inspector';
import type { Frame, Hello, TraceLine } from '../src/inspector/protocol';

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

/** A stand-in for a VirtioFsDevice: a real device actor, and counters the test moves. */
function fakeDevice(inspection: Inspection) {
  const actor = createActor(deviceMachine, { inspect: inspection.inspect }).start();
  const d = { actor, completedRequests: 0, liveRequests: 0, guestFaults: { total: 0, byKind: {} } as VirtioFsDevice['guestFaults'], queueStats: () => [], inFlightRequests: () => [] };
  return d as typeof d & VirtioFsDevice;
}

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
      })
      .on('error', reject);
  });
}

describe('Sampler', () => {
  test('keeps at most a ring of events between drains, converts the newest, counts the rest as dropped', () => {
    const sampler = new Sampler({ getDevices: () => [], ringSize: 64, maxEventsPerDrain: 10 });
    const w = createActor(poolWorkerMachine, { input: { workerId: 1, lane: 'waiter' }, inspect: sampler.observe }).start();
    w.send({ type: 'READY', tid: 77 });
    for (let i = 0; i < 100; i++) {
      w.send({ type: 'DISPATCH', unique: BigInt(i), op: 'fstat', at: Date.now() });
      w.send({ type: 'DONE', at: Date.now() });
    }
    // 202 snapshots (init, READY, 200 more) into a ring of 64: 10 converted, the rest dropped.
    const { events, dropped } = sampler.drainEvents();
    expect(events).toHaveLength(10);
    expect(dropped).toBe(192);
    expect(events[events.length - 1]).toMatchObject({ actor: w.sessionId, actorKind: 'worker', event: 'DONE', state: 'idle' });
    expect(events[events.length - 2]).toMatchObject({ event: 'DISPATCH', state: 'busy', detail: { unique: '99', op: 'fstat' } });
    // The worker is known from its events, and sampled from its snapshot.
    w.send({ type: 'DISPATCH', unique: 4242n, op: 'ofdLock', at: Date.now() - 1500 });
    w.send({ type: 'BLOCKING', at: Date.now() - 1500 });
    expect(sampler.drainEvents().events.map((e) => e.event)).toEqual(['DISPATCH', 'BLOCKING']);
    const s = sampler.sample();
    expect(s.workers).toEqual([expect.objectContaining({ id: w.sessionId, workerId: 1, lane: 'waiter', tid: 77, state: 'blockedInSyscall', unique: '4242', op: 'ofdLock' })]);
    expect(s.workers[0].sinceMs).toBeGreaterThanOrEqual(1400);
    // Its history: the last events, converted on demand.
    expect(sampler.historyOf(w.sessionId).slice(-2).map((e) => e.state)).toEqual(['busy', 'blockedInSyscall']);
    w.stop();
  });

  test('files request events while the request runs and forgets them when it finishes', () => {
    const sampler = new Sampler({ getDevices: () => [] });
    const r = createActor(requestLogic, { input: { queue: 1, head: 3 }, inspect: sampler.observe }).start();
    r.send({ type: 'decoded', unique: 9n, opcode: 33, nodeid: 2n });
    const { events } = sampler.drainEvents();
    expect(events.map((e) => [e.event, e.state])).toEqual([
      ['xstate.init', 'decoding'],
      ['decoded', 'awaitingFs'],
    ]);
    expect(events[1].context).toMatchObject({ unique: '9', opcode: 33, nodeid: '2', queue: 1 });
    expect(sampler.historyOf(r.sessionId)).toHaveLength(2);
    r.send({ type: 'fsAnswered' });
    r.send({ type: 'replyWritten', len: 16 });
    sampler.drainEvents();
    expect(sampler.historyOf(r.sessionId)).toEqual([]);
  });

  test('samples devices and their request rate', () => {
    const inspection = new Inspection();
    const d = fakeDevice(inspection);
    let now = 1_000_000;
    const sampler = new Sampler({ getDevices: () => [d], now: () => now });
    expect(sampler.sample().devices).toEqual([expect.objectContaining({ id: d.actor.sessionId, state: 'connected', queues: 0 })]);
    d.completedRequests += 500;
    now += 250;
    const s = sampler.sample();
    expect(s.rate).toBe(2000);
    expect(s.devices[0].completed).toBe(500);
    // Guest faults: the total, and the kinds seen.
    d.guestFaults = { total: 7, byKind: { 'short header': 0, 'bad header': 0, 'unknown opcode': 5, 'bad arguments': 2, 'bad chain': 0, 'broken ring': 0 } };
    expect(sampler.sample().devices[0]).toMatchObject({ guestFaults: 7, guestFaultsByKind: { 'unknown opcode': 5, 'bad arguments': 2 } });
    expect(Object.keys(sampler.sample().devices[0].guestFaultsByKind)).toEqual(['unknown opcode', 'bad arguments']);
  });
});

describe('charts', () => {
  test('come from the machine definitions, transitions from any state included', () => {
    const device = machineChart(deviceMachine);
    expect(device.initial).toBe('connected');
    expect(device.states.map((s) => s.id)).toEqual(['connected', 'negotiated', 'memoryMapped', 'running', 'savingState', 'loadingState', 'stopping', 'stopped']);
    expect(device.transitions).toContainEqual({ from: '*', to: 'stopping', event: 'disconnected' });
    expect(device.states.find((s) => s.id === 'stopped')?.final).toBe(true);
    const charts = allCharts();
    expect(charts.queue.transitions).toContainEqual({ from: 'stopping', to: 'stopped', event: 'requestsSettled', guard: 'noRequestsInFlight' });
    expect(charts.queue.transitions).toContainEqual({ from: 'waitingForKick', to: null, event: 'kicked' });
    expect(charts.request.transitions).toContainEqual({ from: 'awaitingFs', to: null, event: 'interrupted' });
    expect(charts.request.transitions).toContainEqual({ from: 'decoding', to: 'awaitingFs', event: 'decoded' });
    expect(charts.worker.states.map((s) => s.id)).toContain('blockedInSyscall');
  });
});

describe('TraceRecorder', () => {
  test('writes a header, every event and the samples as JSON lines', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-trace-')), 't.jsonl');
    const rec = new TraceRecorder({ file, charts: allCharts(), opcodes: { 3: 'GETATTR' }, longWaitMs: 700 });
    const r = createActor(requestLogic, { input: { queue: 1, head: 0 }, inspect: rec.observe }).start();
    r.send({ type: 'decoded', unique: 1n, opcode: 3, nodeid: 1n });
    rec.sample({ t: Date.now(), devices: [], queues: [], requests: [], requestsTotal: 0, workers: [], rate: 0, mode: 'full' });
    r.send({ type: 'fsAnswered' });
    r.send({ type: 'replyWritten', len: 16 });
    await rec.close();
    const lines = fs
      .readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as TraceLine);
    expect(lines.map((l) => (l.kind === 'event' ? l.state : l.kind))).toEqual(['header', 'decoding', 'awaitingFs', 'sample', 'writingReply', 'finished']);
    expect(lines[0]).toMatchObject({ kind: 'header', version: 1, longWaitMs: 700, opcodes: { 3: 'GETATTR' } });
    expect(rec.events).toBe(4);
  });

  test('drops events beyond its buffer and says how many', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-trace-')), 't.jsonl');
    const rec = new TraceRecorder({ file, charts: allCharts(), opcodes: {}, longWaitMs: 1000, maxPending: 3 });
    const w = createActor(poolWorkerMachine, { input: { workerId: 1, lane: 'regular' }, inspect: rec.observe }).start();
    for (let i = 0; i < 5; i++) w.send({ type: 'READY', tid: i });
    await rec.close();
    const lines = fs
      .readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as TraceLine);
    expect(lines.filter((l) => l.kind === 'event')).toHaveLength(3);
    expect(lines[lines.length - 1]).toMatchObject({ kind: 'dropped', count: 3 });
    expect(rec.dropped).toBe(3);
  });
});

describe('startInspector', () => {
  test('serves the page on loopback only and refuses foreign Host headers', async () => {
    const inspection = new Inspection();
    await expect(startInspector({ inspection, getDevices: () => [], host: '0.0.0.0' })).rejects.toThrow(/localhost only/);
    const ins = await startInspector({ inspection, getDevices: () => [] });
    expect(ins.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await get(ins.url!);
    expect(page.status).toBe(200);
    expect(page.body).toContain('importmap');
    for (const p of ['app/app.js', 'app/chart.js', 'app/store.js', 'vendor/preact.js', 'vendor/hooks.js', 'vendor/jsx-runtime.js', 'style.css']) {
      const r = await get(ins.url + p);
      expect([p, r.status]).toEqual([p, 200]);
    }
    expect((await get(`${ins.url}app/../../package.json`)).status).toBe(404);
    const port = new URL(ins.url!).port;
    expect((await get(ins.url!, { host: `evil.example:${port}` })).status).toBe(403);
    await ins.close();
  });

  test('streams a hello then frames; watches every request at low load, in windows at high load, none without a page', async () => {
    const inspection = new Inspection();
    const devices: VirtioFsDevice[] = [];
    const ins = await startInspector({ inspection, getDevices: () => devices, flushMs: 30, fullBelowRate: 1000, windowMs: 5, windowEveryMs: 200 });
    // A front-end connects after the inspector started (as in the daemon).
    const d = fakeDevice(inspection);
    devices.push(d);
    expect(inspection.active).toBe(false);
    const messages: Array<Hello | Frame> = [];
    const req = http.get(`${ins.url}events`, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (data) messages.push(JSON.parse(data.slice(6)) as Hello | Frame);
        }
      });
    });
    await tick(150);
    expect(messages[0]).toMatchObject({ kind: 'hello', longWaitMs: 1000, recording: null });
    const hello = messages[0] as Hello;
    expect(hello.history.some((e) => e.actor === d.actor.sessionId && e.state === 'connected')).toBe(true);
    expect(messages.filter((m) => m.kind === 'frame').length).toBeGreaterThan(1);
    expect(ins.clients).toBe(1);
    // A page and little load: every request is watched.
    expect(inspection.active).toBe(true);
    expect((messages[messages.length - 1] as Frame).sample.mode).toBe('full');
    // Full load: watched only in short windows.
    const load = setInterval(() => (d.completedRequests += 10_000), 10);
    await tick(200);
    let activeTicks = 0;
    for (let i = 0; i < 100; i++) {
      if (inspection.active) activeTicks++;
      await tick(4);
    }
    expect((messages[messages.length - 1] as Frame).sample.mode).toBe('windows');
    expect(activeTicks).toBeLessThan(30);
    clearInterval(load);
    // The device's events reach the page.
    d.actor.send({ type: 'featuresNegotiated', features: 0x100000000n });
    await tick(100);
    const events = messages.flatMap((m) => (m.kind === 'frame' ? m.events : []));
    expect(events).toContainEqual(expect.objectContaining({ actor: d.actor.sessionId, event: 'featuresNegotiated', state: 'negotiated', detail: { features: '4294967296' } }));
    // The page leaves: nothing watched.
    req.destroy();
    await tick(100);
    expect(ins.clients).toBe(0);
    expect(inspection.active).toBe(false);
    await ins.close();
  });
});
