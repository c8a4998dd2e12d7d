// What the inspector costs the actor path: GETATTR through the device and request actors (the
// actor-path benchmark's set-up: an in-memory filesystem, the guest side in a child process) with no
// inspector, with the inspector serving but no page, and with a page connected (Debian's chromium
// through playwright-core, or a plain server-sent-events client with --sse). Cases are interleaved
// and repeated; the median is reported.
//   node packages/cli/dist/bench/inspector-bench.js [--seconds 2] [--rounds 3] [--depth 64] [--sse] [--json FILE]
import { fork } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { Inspection, VirtioFsDevice } from '@vfsd/core';
import { type LoadResult, type LoadSpec } from '@vfsd/core/testing';
import { MemoryFs } from '@vfsd/core/dist/test/memory-fs';
import { type Logger, serve } from '@vfsd/vhost';
import { startInspector, type InspectorHandle } from '../src/inspector';
import { median } from './harness';

const quiet: Logger = { error: (m) => console.error(m), warn: () => undefined, info: () => undefined, debug: () => undefined };
const LOAD_SCRIPT = require.resolve('@vfsd/core/dist/src/testing/getattr-load.js');

type Case = 'plain' | 'server' | 'page';

interface Page {
  close(): Promise<void>;
}

async function openPage(url: string, sse: boolean): Promise<Page> {
  if (sse) {
    let frames = 0;
    const req = http.get(`${url}events`, (res) => res.on('data', () => frames++));
    await new Promise((r) => setTimeout(r, 300));
    return {
      close: async () => {
        req.destroy();
        if (frames === 0) throw new Error('no frame received');
      },
    };
  }
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'] });
  const page = await browser.newPage({ viewport: { width: 1480, height: 960 } });
  await page.goto(url);
  await page.locator('[data-testid=conn]', { hasText: 'live' }).waitFor();
  return { close: () => browser.close() };
}

async function measure(kind: Case, depth: number, seconds: number, sse: boolean): Promise<LoadResult & { mode?: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-inspector-bench-'));
  const socketPath = path.join(dir, 's.sock');
  const inspection = new Inspection();
  const devices: VirtioFsDevice[] = [];
  let inspector: InspectorHandle | null = null;
  let page: Page | null = null;
  if (kind !== 'plain') inspector = await startInspector({ inspection, getDevices: () => devices, ...(process.env.VFSD_BENCH_WINDOW_MS ? { windowMs: Number(process.env.VFSD_BENCH_WINDOW_MS) } : {}) });
  if (kind === 'page') page = await openPage(inspector!.url!, sse);
  const server = serve({
    socketPath,
    logger: quiet,
    createDevice: () => {
      const d = new VirtioFsDevice({ fs: new MemoryFs(), requestQueues: 1, logger: quiet, inspection });
      devices.push(d);
      return d;
    },
  });
  let mode: string | undefined;
  const modeProbe = setInterval(() => (mode = inspector?.sampler.mode ?? mode), 500);
  const child = fork(LOAD_SCRIPT, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const result = new Promise<LoadResult>((resolve, reject) => {
    child.once('message', (r) => resolve(r as LoadResult));
    child.once('exit', (code) => code !== 0 && reject(new Error(`front-end exited ${code}`)));
  });
  const spec: LoadSpec = { socketPath, depth, warmupMs: 500, durationMs: seconds * 1000, fuse: true };
  child.send(spec);
  const r = await result;
  clearInterval(modeProbe);
  await server.done;
  await page?.close();
  await inspector?.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { ...r, mode };
}


async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const num = (name: string, dflt: number): number => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const seconds = num('--seconds', 2);
  const rounds = num('--rounds', 3);
  const depths = args.includes('--depth') ? [num('--depth', 64)] : [1, 64];
  const sse = args.includes('--sse') || !fs.existsSync('/usr/bin/chromium');
  const rows: Record<string, unknown>[] = [];
  for (const depth of depths) {
    const ops: Record<Case, number[]> = { plain: [], server: [], page: [] };
    const modes = new Set<string>();
    for (let i = 0; i < rounds; i++) {
      for (const kind of ['plain', 'server', 'page'] as Case[]) {
        const r = await measure(kind, depth, seconds, sse);
        ops[kind].push(r.opsPerSec);
        if (kind === 'page' && r.mode) modes.add(r.mode);
      }
    }
    const plain = median(ops.plain);
    const row = {
      depth,
      plainOps: Math.round(plain),
      serverOps: Math.round(median(ops.server)),
      pageOps: Math.round(median(ops.page)),
      serverLossPct: (100 * (1 - median(ops.server) / plain)).toFixed(1),
      pageLossPct: (100 * (1 - median(ops.page) / plain)).toFixed(1),
      pageModes: [...modes].join(','),
      runs: ops,
    };
    rows.push(row);
  }
  console.log(`inspector cost on the actor path, GETATTR, ${seconds} s x ${rounds} rounds per case (median), page: ${sse ? 'SSE client' : 'chromium'}`);
  console.log('depth  no inspector ops/s  server, no page  (loss)  page connected  (loss)  requests watched');
  for (const r of rows) {
    console.log(`${String(r.depth).padStart(5)}  ${String(r.plainOps).padStart(18)}  ${String(r.serverOps).padStart(15)}  ${`${r.serverLossPct}%`.padStart(6)}  ${String(r.pageOps).padStart(14)}  ${`${r.pageLossPct}%`.padStart(6)}  ${r.pageModes}`);
  }
  const jsonAt = args.indexOf('--json');
  if (jsonAt >= 0) fs.writeFileSync(args[jsonAt + 1], JSON.stringify(rows, null, 2));
}

main().catch((e: Error) => {
  console.error(e.stack);
  process.exit(1);
});
