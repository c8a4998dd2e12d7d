// A QMP client for e2e tests that drive QEMU itself (live migration): one JSON object per line
// over QEMU's UNIX socket, commands answered in order, events skipped.
import * as net from 'net';

export interface QmpReply {
  return?: unknown;
  error?: { class: string; desc: string };
}

export class Qmp {
  private buf = '';
  private readonly waiting: ((r: QmpReply) => void)[] = [];
  private greeted!: Promise<void>;

  private constructor(private readonly sock: net.Socket) {}

  /** Connects (retrying while QEMU creates the socket) and negotiates capabilities. */
  static async connect(path: string, timeoutMs = 30_000): Promise<Qmp> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        const sock = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(path, () => resolve(s));
          s.once('error', reject);
        });
        const q = new Qmp(sock);
        q.start();
        await q.greeted;
        const r = await q.command('qmp_capabilities');
        if (r.error) throw new Error(`qmp_capabilities: ${r.error.desc}`);
        return q;
      } catch (e) {
        if (Date.now() > until) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private closed = false;

  private start(): void {
    // QEMU gone (it quit, or exited on a failed incoming migration): pending commands get an error.
    this.sock.on('close', () => {
      this.closed = true;
      for (const w of this.waiting.splice(0)) w({ error: { class: 'Closed', desc: 'QEMU closed the QMP socket' } });
    });
    this.sock.on('error', () => undefined);
    let greet!: () => void;
    this.greeted = new Promise((r) => (greet = r));
    this.sock.setEncoding('utf8');
    this.sock.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as QmpReply & { QMP?: unknown; event?: string };
        if (msg.QMP) greet();
        else if (msg.event === undefined) this.waiting.shift()?.(msg);
      }
    });
  }

  command(execute: string, args?: Record<string, unknown>): Promise<QmpReply> {
    if (this.closed) return Promise.resolve({ error: { class: 'Closed', desc: 'QEMU closed the QMP socket' } });
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.sock.write(JSON.stringify(args ? { execute, arguments: args } : { execute }) + '\n');
    });
  }

  close(): void {
    this.sock.destroy();
  }
}
