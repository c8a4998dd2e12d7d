// `vfsd --inspect [PORT]`: a web page on localhost that shows the daemon's actors live, and
// `--record FILE`: the same actors' events as JSON lines, which the page replays.
//
// Cost model. Device, queue and pool-worker actors report every event through inspection (a store
// into the sampler's ring each). Request actors are xstate actors only while someone subscribes in
// full to the Inspection hub (see packages/core/src/actors/request-run.ts), which costs several µs
// per request; so the live view subscribes in full only while a page is open and the daemon answers
// fewer than `fullBelowRate` requests per second, and above that only for `windowMs` out of every
// `windowEveryMs`. What the page shows as in flight never depends on that: it is read from the
// queues at each frame. Frames go out every `flushMs` (and only while a page is connected).
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { Inspection, VirtioFsDevice } from '@vfsd/core';
import type { ActorRefLike, InspectionEvent } from 'xstate';
import { allCharts, opcodeNames } from './charts';
import type { Frame, Hello, InspectMode } from './protocol';
import { TraceRecorder } from './recorder';
import { Sampler } from './sampler';

export interface InspectorOptions {
  inspection: Inspection;
  getDevices: () => readonly VirtioFsDevice[];
  /** Serve the page on this port (0: any free port); null: no page (record only). Default 0. */
  port?: number | null;
  /** Loopback only: 127.0.0.1 (default), ::1 or localhost. */
  host?: string;
  /** Write a trace (JSON lines) to this file. */
  record?: string;
  /** Pool workers known from a pool's public API (besides those seen through `poolInspect`). */
  getWorkers?: () => Iterable<ActorRefLike>;
  /** A request in flight longer than this stands out on the page. Default 1000 ms. */
  longWaitMs?: number;
  /** Frame period. Default 150 ms. */
  flushMs?: number;
  /** Watch every request while the daemon answers fewer requests per second than this. Default 1000. */
  fullBelowRate?: number;
  /** Above it, watch every request for windowMs out of every windowEveryMs. Default 10 / 2000. */
  windowMs?: number;
  windowEveryMs?: number;
}

export interface InspectorHandle {
  /** The page's address, e.g. http://127.0.0.1:7420/ (null when not serving). */
  readonly url: string | null;
  /** Pass as PassthroughOptions.pool.inspect: the pool workers' actors report here. */
  readonly poolInspect: (event: InspectionEvent) => void;
  readonly sampler: Sampler;
  readonly recorder: TraceRecorder | null;
  /** Pages connected now. */
  readonly clients: number;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const NOOP = (): void => undefined;

/** Where the page's files are: static (HTML, CSS), compiled (the page's JS), and preact's modules. */
export function pageFiles(): { staticDir: string; appDir: string; vendor: Record<string, string> } {
  const pkg = path.resolve(__dirname, '..', '..', '..');
  const preact = path.dirname(require.resolve('preact/package.json'));
  return {
    staticDir: path.join(pkg, 'web', 'static'),
    appDir: path.join(pkg, 'dist', 'page', 'web', 'src'),
    vendor: {
      'preact.js': path.join(preact, 'dist', 'preact.module.js'),
      'hooks.js': path.join(preact, 'hooks', 'dist', 'hooks.module.js'),
      'jsx-runtime.js': path.join(preact, 'jsx-runtime', 'dist', 'jsxRuntime.module.js'),
    },
  };
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.svg': 'image/svg+xml' };

function sendFile(res: http.ServerResponse, file: string): void {
  fs.readFile(file, (err, data) => {
    if (err) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache' }).end(data);
  });
}

export interface PageRoutes {
  /** Live stream (server-sent events); absent when only a trace is served. */
  events?: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  /** One actor's recent events (JSON). */
  history?: (actor: string) => unknown;
  /** The trace file to offer at /trace. */
  trace?: () => string | null;
}

/** The page's HTTP handler: the page, its scripts, and the routes given. Rejects foreign Host headers. */
export function pageHandler(routes: PageRoutes, allowedHosts: () => Set<string>): http.RequestListener {
  const files = pageFiles();
  return (req, res) => {
    // DNS rebinding: a page from elsewhere that resolves its name to 127.0.0.1 must not read ours.
    if (!allowedHosts().has(String(req.headers.host ?? '').toLowerCase())) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end('forbidden host\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const p = url.pathname;
    if (p === '/' || p === '/index.html') return sendFile(res, path.join(files.staticDir, 'index.html'));
    if (p === '/style.css') return sendFile(res, path.join(files.staticDir, 'style.css'));
    let m = /^\/app\/([a-z0-9-]+\.js)$/.exec(p);
    if (m) return sendFile(res, path.join(files.appDir, m[1]));
    m = /^\/vendor\/([a-z-]+\.js)$/.exec(p);
    if (m && files.vendor[m[1]]) return sendFile(res, files.vendor[m[1]]);
    if (p === '/events' && routes.events) return routes.events(req, res);
    if (p === '/api/history' && routes.history) {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache' }).end(JSON.stringify(routes.history(url.searchParams.get('actor') ?? '')));
      return;
    }
    if (p === '/trace') {
      const file = routes.trace?.() ?? null;
      if (!file) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('no trace\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' });
      fs.createReadStream(file).on('error', () => res.end()).pipe(res);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  };
}

export function hostsFor(port: number): Set<string> {
  return new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
}

export function listen(server: http.Server, port: number, host: string): Promise<number> {
  if (!LOOPBACK.has(host)) throw new Error(`the inspector serves on localhost only, not on ${host}`);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export async function startInspector(options: InspectorOptions): Promise<InspectorHandle> {
  const { inspection } = options;
  const longWaitMs = options.longWaitMs ?? 1000;
  const flushMs = options.flushMs ?? 150;
  const fullBelowRate = options.fullBelowRate ?? 1000;
  const windowMs = options.windowMs ?? 10;
  const windowEveryMs = options.windowEveryMs ?? 2000;
  const charts = allCharts();
  const sampler = new Sampler({ getDevices: options.getDevices });
  const recorder = options.record ? new TraceRecorder({ file: options.record, charts, opcodes: opcodeNames(), longWaitMs }) : null;
  const clients = new Set<http.ServerResponse>();

  // What long-lived actors report anyway, always (it costs nothing per request).
  const unwatch = inspection.watch(sampler.observe);
  // The recorder wants every request: it subscribes in full for as long as it records.
  const unrecord = recorder ? inspection.subscribe(recorder.observe) : NOOP;
  const poolInspect = recorder
    ? (e: InspectionEvent): void => {
        sampler.observe(e);
        recorder.observe(e);
      }
    : sampler.observe;

  // The live page's subscription: full at low load, in windows at high load, none without a page.
  let unsubscribeFull: (() => void) | null = null;
  let mode: InspectMode = 'off';
  let lastWindowAt = 0;
  let windowTimer: NodeJS.Timeout | undefined;
  const setFull = (on: boolean): void => {
    if (on && !unsubscribeFull) unsubscribeFull = inspection.subscribe(NOOP);
    else if (!on && unsubscribeFull) {
      unsubscribeFull();
      unsubscribeFull = null;
    }
  };
  const setMode = (next: InspectMode): void => {
    if (next === mode) return;
    mode = next;
    if (windowTimer) clearTimeout(windowTimer);
    windowTimer = undefined;
    setFull(next === 'full');
  };
  const adapt = (rate: number, now: number): void => {
    if (recorder) {
      mode = 'full';
      return;
    }
    if (clients.size === 0) return setMode('off');
    if (mode === 'off') setMode(rate < fullBelowRate ? 'full' : 'windows');
    else if (mode === 'full' && rate >= fullBelowRate * 2) setMode('windows');
    else if (mode === 'windows' && rate < fullBelowRate / 2) setMode('full');
    if (mode === 'windows' && now - lastWindowAt >= windowEveryMs) {
      lastWindowAt = now;
      setFull(true);
      windowTimer = setTimeout(() => {
        windowTimer = undefined;
        if (mode === 'windows') setFull(false);
      }, windowMs);
    }
  };

  let ticks = 0;
  const tick = (): void => {
    ticks++;
    if (options.getWorkers) sampler.addWorkers(options.getWorkers());
    const busy = clients.size > 0 || recorder !== null;
    // With no page and no recording, only keep the long-lived actors' histories (once a second).
    if (!busy) {
      if (ticks % Math.max(1, Math.round(1000 / flushMs)) === 0) sampler.drainEvents();
      adapt(0, Date.now());
      return;
    }
    const { events, dropped } = sampler.drainEvents();
    sampler.mode = mode;
    const sample = sampler.sample();
    adapt(sample.rate, sample.t);
    recorder?.sample(sample);
    if (clients.size === 0) return;
    const frame: Frame = { kind: 'frame', sample, events, dropped };
    const data = `data: ${JSON.stringify(frame)}\n\n`;
    for (const res of clients) {
      // A page that does not keep up skips frames rather than queueing them.
      if (res.writableLength < 4 << 20) res.write(data);
    }
  };
  const timer = setInterval(tick, flushMs);
  timer.unref();

  const events = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    sampler.drainEvents();
    const hello: Hello = { kind: 'hello', charts, opcodes: opcodeNames(), longWaitMs, history: sampler.history(), recording: options.record ?? null };
    res.write(`retry: 1000\ndata: ${JSON.stringify(hello)}\n\n`);
    clients.add(res);
    req.on('close', () => {
      clients.delete(res);
      if (clients.size === 0 && !recorder) setMode('off');
    });
  };

  let server: http.Server | null = null;
  let url: string | null = null;
  if (options.port !== null) {
    let port = 0;
    server = http.createServer(pageHandler({ events, history: (id) => sampler.historyOf(id), trace: () => options.record ?? null }, () => hostsFor(port)));
    const host = options.host ?? '127.0.0.1';
    port = await listen(server, options.port ?? 0, host);
    url = `http://${host === '::1' ? '[::1]' : host}:${port}/`;
  }

  return {
    url,
    poolInspect,
    sampler,
    recorder,
    get clients() {
      return clients.size;
    },
    async close() {
      clearInterval(timer);
      if (windowTimer) clearTimeout(windowTimer);
      setFull(false);
      unwatch();
      unrecord();
      for (const res of clients) res.end();
      clients.clear();
      if (server) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server!.close(() => resolve()));
      }
      if (recorder) {
        recorder.sample(sampler.sample());
        await recorder.close();
      }
    },
  };
}

/** Serves the page alone, to replay a trace (no daemon): the page opens /trace at once. */
export async function serveTrace(file: string, port = 0, host = '127.0.0.1'): Promise<{ url: string; close(): Promise<void> }> {
  let bound = 0;
  const server = http.createServer(pageHandler({ trace: () => file }, () => hostsFor(bound)));
  bound = await listen(server, port, host);
  return {
    url: `http://${host === '::1' ? '[::1]' : host}:${bound}/?replay=/trace`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
