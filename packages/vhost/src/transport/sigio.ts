// Readiness of the control-plane sockets in the main thread, with no thread of its own: each socket is
// non-blocking and O_ASYNC with this process as owner, so the kernel sends SIGIO when one becomes
// readable (a connection to accept, bytes or an end of stream to read). libuv turns the signal into an
// event-loop callback, which lets every watcher try its socket until EAGAIN (signals coalesce, so each
// watcher reads all it can). A worker blocked in accept/recvmsg did the same job for about 10 MB of
// resident memory (an isolate) and a thread.
import { F_GETFL, F_SETFL, F_SETOWN, O_ASYNC, O_NONBLOCK, fcntl, getpid } from '../sys/libc';

type Poll = () => void;

const watchers = new Set<Poll>();
/** Signal listeners do not keep Node's event loop alive: this handle does while something is watched. */
let keepAlive: NodeJS.Timeout | null = null;
/**
 * Installed once and never removed: SIGIO's default action ends the process ("I/O possible"), and a
 * signal may still be on its way after a socket stops being watched.
 */
let installed = false;

const onSignal = (): void => {
  for (const poll of [...watchers]) poll();
};

const SIGIO = 29;

interface SignalWrap {
  onsignal: (signum: number) => void;
  start(signum: number): number;
  unref(): void;
}

/**
 * libuv's signal watcher, as process.on('SIGIO') makes it, but taken from the binding: a host that
 * gives modules a process object of its own (jest does) would otherwise never install the handler.
 */
function installHandler(): void {
  const binding = (process as unknown as { binding(name: string): unknown }).binding;
  // Deliberate (as pipe_wrap in sys/eventfd.ts): no deprecation warning on a daemon's stderr.
  const quiet = process.noDeprecation;
  process.noDeprecation = true;
  let Signal: new () => SignalWrap;
  try {
    ({ Signal } = binding('signal_wrap') as { Signal: new () => SignalWrap });
  } finally {
    process.noDeprecation = quiet;
  }
  const wrap = new Signal();
  wrap.unref();
  wrap.onsignal = onSignal;
  const rc = wrap.start(SIGIO);
  if (rc !== 0) throw new Error(`cannot watch SIGIO: libuv error ${rc}`);
}

/** Makes `fd` non-blocking and signal-driven, and calls `poll` on every SIGIO (and once now) until unwatched. */
export function watchReadable(fd: number, poll: Poll): () => void {
  if (!installed) {
    installHandler();
    installed = true;
  }
  fcntl(fd, F_SETOWN, getpid());
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK | O_ASYNC);
  keepAlive ??= setInterval(() => undefined, 1 << 30);
  watchers.add(poll);
  // Bytes (or a connection) that arrived before O_ASYNC was set raised no signal.
  setImmediate(() => {
    if (watchers.has(poll)) poll();
  });
  return () => {
    if (!watchers.delete(poll)) return;
    try {
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) & ~O_ASYNC);
    } catch {
      // already closed
    }
    if (watchers.size > 0 || !keepAlive) return;
    clearInterval(keepAlive);
    keepAlive = null;
  };
}
