// Kick and call eventfds. Reads must not block the event loop nor sit on libuv's shared threadpool,
// and the kick is on every request's latency. libuv can watch any pollable fd as a stream: Node's
// public net.Socket refuses an eventfd only because its type guess says "UNKNOWN", so the fd is
// opened in a pipe_wrap handle and handed to net.Socket. Measured here (bench/kick-latency.ts), a
// kick from another process to the 'data' callback: 6 µs p50 on the same CPU, 15 µs from the other
// CPU, against 18-26 µs through a worker thread blocked in read(2), at half the CPU per kick.
import * as net from 'net';
import { EAGAIN, EFD_CLOEXEC, EFD_NONBLOCK, SysError, eventfd, writeFd } from './libc';

interface PipeHandle {
  open(fd: number): number;
}
interface PipeWrapBinding {
  Pipe: new (type: number) => PipeHandle;
  constants: { SOCKET: number };
}

function pipeWrap(): PipeWrapBinding {
  const binding = (process as unknown as { binding(name: string): unknown }).binding;
  return binding('pipe_wrap') as PipeWrapBinding;
}

const ONE = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);

/** A new non-blocking eventfd. */
export function createEventFd(): number {
  return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

/**
 * Adds 1 to an eventfd's counter (a call or kick): write(2) through koffi, about 0.5 µs (Node's
 * fs.writeSync cost about 1.7 µs per call in the daemon's profile).
 */
export function signalEventFd(fd: number): void {
  const r = writeFd(fd, ONE);
  // EAGAIN: the counter is at its maximum, the peer will wake anyway.
  if (r < 0 && r !== -EAGAIN) throw new SysError('write', -r);
}

/**
 * Watches an eventfd in the main event loop and calls `onSignal` each time it fires (coalesced
 * signals arrive as one). The watcher takes ownership of the fd: close() closes it.
 */
export class EventFdWatcher {
  private readonly socket: net.Socket;
  private closed = false;

  constructor(
    readonly fd: number,
    onSignal: () => void,
    onError: (err: Error) => void = () => undefined,
  ) {
    const { Pipe, constants } = pipeWrap();
    const handle = new Pipe(constants.SOCKET);
    const rc = handle.open(fd);
    if (rc !== 0) throw new Error(`cannot watch fd ${fd}: libuv error ${rc}`);
    this.socket = new net.Socket({ handle, readable: true, writable: false } as net.SocketConstructorOpts);
    this.socket.on('data', onSignal);
    this.socket.on('error', (err) => {
      if (!this.closed) onError(err);
    });
  }

  /** Stops watching and closes the fd. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
  }
}
