// Worker thread: accepts front-end connections on the listening socket and reads vhost-user
// messages with their fds (recvmsg blocks here, never on the main thread or libuv's threadpool).
// The main thread owns every fd it is told about; to end a connection it shuts the socket down,
// which wakes the blocked recvmsg.
import { parentPort, workerData } from 'worker_threads';
import { SOCK_CLOEXEC, SysError, accept4 } from '../sys/libc';
import { ScmChannel } from '../sys/scm-rights';
import { HEADER_SIZE, MAX_PAYLOAD } from '../protocol/messages';
import { ReaderCommand, ReaderEvent, ReaderWorkerData } from './reader-events';

const { listenFd, control } = workerData as ReaderWorkerData;
const commands = new Int32Array(control);
const scm = new ScmChannel();
const port = parentPort!;

function post(e: ReaderEvent, transfer: ArrayBuffer[] = []): void {
  port.postMessage(e, transfer);
}

/** Reads exactly n bytes into `out` at `at`; the first read collects fds. Returns false at end of stream. */
function readFully(fd: number, out: Buffer, n: number, fds: number[] | null): { ok: boolean; truncated: boolean } {
  let got = 0;
  let truncated = false;
  while (got < n) {
    const r = scm.receive(fd, n - got, fds !== null && got === 0);
    if (r.length === 0) {
      fds?.push(...r.fds);
      return { ok: false, truncated };
    }
    if (fds) fds.push(...r.fds);
    truncated ||= r.truncatedFds;
    scm.data.copy(out, got, 0, r.length);
    got += r.length;
  }
  return { ok: true, truncated };
}

function serve(fd: number): void {
  const header = Buffer.alloc(HEADER_SIZE);
  for (;;) {
    const fds: number[] = [];
    const h = readFully(fd, header, HEADER_SIZE, fds);
    if (!h.ok) {
      post({ type: 'disconnected', reason: 'front-end closed the connection', fds });
      return;
    }
    const size = header.readUInt32LE(8);
    if (size > MAX_PAYLOAD) {
      post({ type: 'malformed', reason: `payload size ${size} exceeds ${MAX_PAYLOAD} (request ${header.readUInt32LE(0)})`, fds });
      return;
    }
    const payload = Buffer.alloc(size);
    const p = readFully(fd, payload, size, null);
    if (!p.ok) {
      post({ type: 'disconnected', reason: `end of stream inside a message (${size}-byte payload expected)`, fds });
      return;
    }
    const ab = new ArrayBuffer(HEADER_SIZE + size);
    const whole = Buffer.from(ab);
    header.copy(whole, 0);
    payload.copy(whole, HEADER_SIZE);
    post({ type: 'message', bytes: ab, fds, fdsTruncated: h.truncated }, [ab]);
  }
}

function main(): void {
  for (;;) {
    let conn: number;
    try {
      conn = accept4(listenFd, SOCK_CLOEXEC);
    } catch (e) {
      if (e instanceof SysError && e.errno === 4 /* EINTR */) continue;
      post({ type: 'listener-closed', reason: (e as Error).message });
      return;
    }
    post({ type: 'connected', fd: conn });
    try {
      serve(conn);
    } catch (e) {
      post({ type: 'disconnected', reason: (e as Error).message, fds: [] });
    }
    // Wait for the main thread to say whether to accept the next front-end.
    Atomics.wait(commands, 0, ReaderCommand.None);
    const cmd = Atomics.exchange(commands, 0, ReaderCommand.None);
    if (cmd !== ReaderCommand.AcceptNext) return;
  }
}

main();
