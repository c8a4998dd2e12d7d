// The inspector in a real browser (Debian's chromium, driven by playwright-core; run
// scripts/setup-browser.sh first): a daemon in process with the passthrough, real OFD locks and the
// inspector; load through the simulated front-end with one F_SETLKW that stays blocked. The page must
// show the queue, the blocked request in its waiting phase and the pool worker blocked in it; then the
// trace recorded during the run must replay in the same page. Screenshots go to artifacts/.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Inspection, VirtioFsDevice } from '@vfsd/core';
import { FuseClient } from '@vfsd/core/testing';
import { PassthroughFs } from '@vfsd/passthrough';
import { Logger, serve } from '@vfsd/vhost';
import { SimulatedFrontend } from '@vfsd/vhost/testing';
import { serveTrace, startInspector, type InspectorHandle } from '../src/inspector';
import type { TraceLine } from '../src/inspector/protocol';

const CHROMIUM = process.env.VFSD_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(__dirname, '..', '..', '..', '..', 'artifacts');
const F_WRLCK = 1;
const F_UNLCK = 2;
const WHOLE = { start: 0n, end: 0x7fffffffffffffffn, type: F_WRLCK, pid: 1 };
// Far above the uniques the client numbers the GETATTR load with (1, 2, ...), which reached 4242 once.
const SETLKW_UNIQUE = 4_242_000_000n;
const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

jest.setTimeout(120_000);

let browser: Browser;
// What a test opened, closed after it even when it fails (an open server would keep jest from exiting).
const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) {
    try {
      await f();
    } catch {
      // Closed already by the test.
    }
  }
});

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup-browser.sh`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage', '--no-first-run', '--disable-extensions'],
  });
});

afterAll(async () => {
  await browser?.close();
});

async function newPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1480, height: 960 }, deviceScaleFactor: 1 });
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  return page;
}

test('the page shows the queue, the blocked SETLKW waiting and the worker blocked in it; the trace replays', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-inspect-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const share = path.join(dir, 'share');
  fs.mkdirSync(share);
  fs.writeFileSync(path.join(share, 'locked'), 'x');
  const sock = path.join(dir, 'vhost.sock');
  const tracePath = path.join(ARTIFACTS, 'inspector-trace.jsonl');
  const errors: string[] = [];
  const logger: Logger = { error: (m) => errors.push(m), warn: () => undefined, info: () => undefined, debug: () => undefined };

  // The daemon as main.ts wires it: one Inspection, the devices list, the pool's inspect option.
  const inspection = new Inspection();
  const devices: VirtioFsDevice[] = [];
  const inspector: InspectorHandle = await startInspector({ port: 0, inspection, getDevices: () => devices, record: tracePath, longWaitMs: 500 });
  cleanups.push(() => inspector.close());
  const server = serve({
    socketPath: sock,
    logger,
    createDevice: () => {
      const d = new VirtioFsDevice({
        fs: new PassthroughFs({ sharedDir: share, threadPoolSize: 2, pool: { inspect: inspector.poolInspect } }),
        requestQueues: 1,
        logger,
        inspection,
      });
      devices.push(d);
      return d;
    },
  });
  cleanups.push(() => server.stop());

  const page = await newPage();
  await page.goto(inspector.url!);
  await page.locator('[data-testid=conn]', { hasText: 'live' }).waitFor();

  const fe = await SimulatedFrontend.connect(sock);
  cleanups.push(() => fe.close());
  await fe.negotiate({ numQueues: 2, queueSize: 256 });
  const c = new FuseClient(fe, 1);
  expect((await c.init()).error).toBe(0);
  const l = await c.lookup(1n, 'locked');
  expect(l.error).toBe(0);
  const nodeid = l.body.readBigUInt64LE(0);
  expect((await c.setlk(nodeid, 1n, WHOLE, false)).error).toBe(0);
  // Another owner's F_SETLKW: it waits in the pool's waiter lane until the lock is released.
  const blocked = c.setlk(nodeid, 2n, WHOLE, true, SETLKW_UNIQUE);
  // Load beside it: GETATTRs, 8 at a time, until the page has been checked.
  let loading = true;
  let answered = 0;
  const load = Promise.all(
    Array.from({ length: 8 }, async () => {
      while (loading) {
        if ((await c.getattr(nodeid)).error === 0) answered++;
        await tick(2);
      }
    }),
  );

  // The queue, with the ring moving.
  const queue = page.locator('[data-testid=queue-1]');
  await queue.waitFor();
  await page.waitForFunction("Number(document.querySelector('[data-testid=queue-1] [data-testid=kicks]')?.textContent?.replace(/,/g, '')) > 10");
  expect(await queue.getAttribute('data-state')).toBe('waitingForKick');
  // The blocked request, in its waiting phase, standing out once it waited longer than 500 ms.
  const row = page.locator('[data-testid=request-row][data-op=SETLKW]');
  await row.waitFor();
  expect(await row.getAttribute('data-phase')).toBe('awaitingFs');
  await page.locator('[data-testid=request-row][data-op=SETLKW][data-long=true]').waitFor();
  expect(await row.locator('td').nth(1).textContent()).toBe(SETLKW_UNIQUE.toString());
  // The worker blocked in it.
  const worker = page.locator(`[data-state=blockedInSyscall][data-unique="${SETLKW_UNIQUE}"]`);
  await worker.waitFor();
  expect(await worker.textContent()).toContain('fcntl(F_OFD_SETLKW)');
  expect(await row.textContent()).toMatch(/worker \d+ · blocked/);

  // Its state chart, current state highlighted, with its recent events.
  await row.click();
  const detail = page.locator('[data-testid=detail]');
  await detail.locator('.state.current[data-state=awaitingFs]').waitFor();
  await detail.locator('[data-testid=events] li', { hasText: 'decoded' }).first().waitFor();
  await page.waitForTimeout(400);
  await page.screenshot({ path: path.join(ARTIFACTS, 'inspector-live.png') });
  // The worker's chart.
  await worker.click();
  await detail.locator('.state.current[data-state=blockedInSyscall]').waitFor();
  await page.screenshot({ path: path.join(ARTIFACTS, 'inspector-worker.png') });
  // The queue's chart.
  await queue.click();
  await detail.locator('.state.current[data-state=waitingForKick]').waitFor();

  loading = false;
  await load;
  expect(answered).toBeGreaterThan(50);
  // Release the lock: the waiter gets it, and the page sees the request gone.
  expect((await c.setlk(nodeid, 1n, { ...WHOLE, type: F_UNLCK }, false)).error).toBe(0);
  expect((await blocked).error).toBe(0);
  await page.locator('[data-testid=request-row][data-op=SETLKW]').waitFor({ state: 'detached' });
  await page.locator(`[data-state=blockedInSyscall]`).waitFor({ state: 'detached' });
  fe.close();
  await server.stop();
  await inspector.close();
  await page.close();
  expect(errors).toEqual([]);

  // The trace: JSON lines, a header, events of every kind of actor, samples.
  const lines = fs
    .readFileSync(tracePath, 'utf8')
    .split('\n')
    .filter((x) => x)
    .map((x) => JSON.parse(x) as TraceLine);
  expect(lines[0].kind).toBe('header');
  const kinds = new Set(lines.flatMap((x) => (x.kind === 'event' ? [x.actorKind] : [])));
  expect([...kinds].sort()).toEqual(['device', 'queue', 'request', 'worker']);
  const waitingAt = lines.findIndex((x) => x.kind === 'sample' && x.requests.some((r) => r.op === 'SETLKW' && r.phase === 'awaitingFs' && r.ageMs > 500));
  expect(waitingAt).toBeGreaterThan(0);
  const waiting = lines[waitingAt];
  const setlkwActor = waiting.kind === 'sample' ? waiting.requests.find((r) => r.op === 'SETLKW')!.id : '';
  const doneAt = lines.findIndex((x) => x.kind === 'event' && x.actor === setlkwActor && x.state === 'finished');
  expect(doneAt).toBeGreaterThan(waitingAt);

  // Replay it in the page, with no daemon: forwards to the wait, backwards, forwards past its end.
  const viewer = await serveTrace(tracePath);
  cleanups.push(() => viewer.close());
  const rp = await newPage();
  await rp.goto(viewer.url);
  await rp.locator('[data-testid=replaybar]').waitFor();
  await rp.locator('[data-testid=conn]', { hasText: 'replay' }).waitFor();
  const pos = rp.locator('[data-testid=replay-pos]');
  expect(await pos.textContent()).toBe(`1 / ${lines.length}`);
  const slider = rp.locator('[data-testid=replay-slider]');
  await slider.fill(String(waitingAt));
  expect(await pos.textContent()).toBe(`${waitingAt + 1} / ${lines.length}`);
  const rrow = rp.locator('[data-testid=request-row][data-op=SETLKW]');
  await rrow.waitFor();
  expect(await rrow.getAttribute('data-phase')).toBe('awaitingFs');
  await rp.locator(`[data-testid^=worker-][data-state=blockedInSyscall][data-unique="${SETLKW_UNIQUE}"]`).waitFor();
  await rp.locator('[data-testid=queue-1]').waitFor();
  await rrow.click();
  await rp.locator('[data-testid=detail] .state.current[data-state=awaitingFs]').waitFor();
  // One step back and one forward.
  await rp.locator('[data-testid=replay-back]').click();
  expect(await pos.textContent()).toBe(`${waitingAt} / ${lines.length}`);
  await rp.locator('[data-testid=replay-forward]').click();
  expect(await pos.textContent()).toBe(`${waitingAt + 1} / ${lines.length}`);
  await rp.waitForTimeout(200);
  await rp.screenshot({ path: path.join(ARTIFACTS, 'inspector-replay.png') });
  // Past the SETLKW's end it is gone; back before it, it is there again.
  await slider.fill(String(doneAt));
  await rp.locator('[data-testid=request-row][data-op=SETLKW]').waitFor({ state: 'detached' });
  await slider.fill(String(waitingAt));
  await rp.locator('[data-testid=request-row][data-op=SETLKW][data-phase=awaitingFs]').waitFor();
  // Stepping backwards event by event reaches the start.
  await rp.locator('[data-testid=replay-start]').click();
  expect(await pos.textContent()).toBe(`0 / ${lines.length}`);
  await rp.locator('[data-testid=replay-next-event]').click();
  expect(Number((await pos.textContent())!.split(' / ')[0])).toBeGreaterThan(1);
  await rp.close();
});
