// The listening vhost-user socket and the one front-end connection served at a time, both read in
// the main thread when the kernel signals them readable (sigio.ts), with non-blocking calls.
import * as fs from 'fs';
import * as path from 'path';
import { AF_UNIX, EAGAIN, EINTR, LOCK_EX, SHUT_RDWR, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM, SysError, accept4, bind, listen, shutdown, socket, sockaddrUn, tryFlock } from '../sys/libc';
import { ScmChannel } from '../sys/scm-rights';
import type { Header } from '../protocol/messages';
import { MessageReader } from './message-reader';
import { watchReadable } from './sigio';

export interface RawMessage {
  header: Header;
  payload: Buffer;
  /** Received fds, owned by whoever handles the message (close what you do not keep). */
  fds: number[];
  fdsTruncated: boolean;
}

export interface ConnectionHandler {
  message(msg: RawMessage): void;
  /** The connection is gone (front-end closed, malformed framing, or close() was called). */
  closed(reason: string): void;
}

function closeFds(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
  }
}

/** A non-blocking socket whose buffer is full: wait this long between tries of a reply (rare: replies are small). */
const SEND_RETRY_MS = 1;
const SEND_RETRIES = 5000;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** One front-end connection. Replies are written from the main thread (small writes, retried if the socket is full). */
export class Connection {
  private isClosed = false;
  constructor(
    readonly fd: number,
    /** Reads the socket now (after close(), to see its end). */
    private readonly wake: () => void = () => undefined,
  ) {}

  get closed(): boolean {
    return this.isClosed;
  }

  send(bytes: Buffer): boolean {
    if (this.isClosed) return false;
    let off = 0;
    let retries = 0;
    while (off < bytes.length) {
      try {
        off += fs.writeSync(this.fd, bytes, off, bytes.length - off);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' && retries++ < SEND_RETRIES) {
          Atomics.wait(sleeper, 0, 0, SEND_RETRY_MS);
          continue;
        }
        // EPIPE/ECONNRESET (or a front-end that reads nothing for 5 s): the reader reports the end.
        return false;
      }
    }
    return true;
  }

  /** Ends the connection: the socket is shut down and its reader reports `closed`. */
  close(): void {
    if (this.isClosed) return;
    try {
      shutdown(this.fd, SHUT_RDWR);
    } catch {
      // not connected any more
    }
    setImmediate(this.wake);
  }

  /** @internal */
  release(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    closeFds([this.fd]);
  }
}

export interface ListenerOptions {
  /** Keep accepting front-ends after one disconnects (default: stop, as virtiofsd exits). */
  reconnect?: boolean;
  /** Called between bind and listen (ownership, mode): no front-end can connect before it is done. */
  beforeListen?: (socketPath: string) => void;
}

/**
 * Listens on a UNIX socket (a path, or an inherited listening fd) and serves one front-end at a time.
 * `onConnection` returns the handler for that connection's messages.
 */
export class VhostUserListener {
  private current: { conn: Connection; handler: ConnectionHandler; reader: MessageReader; unwatch: () => void } | null = null;
  private readonly scm = new ScmChannel();
  private unwatchListener: (() => void) | null = null;
  private stopped = false;
  private finished = false;
  /** Held (flock) while this daemon serves the path. */
  private lockFd: number | null = null;
  private doneResolve!: () => void;
  /** Resolves when the listener has stopped (after the last connection, or stop()). */
  readonly done: Promise<void>;

  private constructor(
    readonly listenFd: number,
    readonly socketPath: string | null,
    private readonly onConnection: (conn: Connection) => ConnectionHandler,
    private readonly options: ListenerOptions,
  ) {
    this.done = new Promise((r) => (this.doneResolve = r));
  }

  /**
   * Binds `socketPath`, replacing a stale socket file; refuses a path that a live daemon serves.
   * Liveness is a lock on `PATH.lock` held for the daemon's life: probing by connecting would look
   * like a front-end to the live daemon, which then serves (and loses) a connection.
   */
  static listenPath(socketPath: string, onConnection: (conn: Connection) => ConnectionHandler, options: ListenerOptions = {}): VhostUserListener {
    const abs = path.resolve(socketPath);
    const addr = sockaddrUn(abs);
    const lockFd = fs.openSync(`${abs}.lock`, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    if (!tryFlock(lockFd, LOCK_EX)) {
      closeFds([lockFd]);
      throw new Error(`${abs} is already served by a running daemon`);
    }
    try {
      if (fs.existsSync(abs)) {
        if (!fs.lstatSync(abs).isSocket()) throw new Error(`${abs} exists and is not a socket`);
        fs.unlinkSync(abs); // stale: its daemon is gone (it would hold the lock)
      }
    } catch (e) {
      closeFds([lockFd]);
      throw e;
    }
    const fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    try {
      bind(fd, addr);
      options.beforeListen?.(abs);
      listen(fd, 1);
    } catch (e) {
      closeFds([fd, lockFd]);
      try {
        fs.unlinkSync(abs);
      } catch {
        // not bound
      }
      throw e;
    }
    const l = new VhostUserListener(fd, abs, onConnection, options);
    l.lockFd = lockFd;
    l.start();
    return l;
  }

  /** Serves an inherited, already listening socket (virtiofsd's --fd). */
  static fromFd(fd: number, onConnection: (conn: Connection) => ConnectionHandler, options: ListenerOptions = {}): VhostUserListener {
    const st = fs.fstatSync(fd);
    if (!st.isSocket()) throw new Error(`fd ${fd} is not a socket`);
    const l = new VhostUserListener(fd, null, onConnection, options);
    l.start();
    return l;
  }

  private start(): void {
    this.unwatchListener = watchReadable(this.listenFd, () => this.accept());
  }

  /** Takes a waiting front-end, unless one is served (the next waits in the backlog). */
  private accept(): void {
    if (this.stopped || this.current) return;
    let fd: number;
    try {
      fd = accept4(this.listenFd, SOCK_CLOEXEC | SOCK_NONBLOCK);
    } catch (e) {
      if (e instanceof SysError && (e.errno === EAGAIN || e.errno === EINTR)) return;
      this.stop();
      return;
    }
    const conn = new Connection(fd, () => this.read());
    const reader = new MessageReader(fd, this.scm);
    this.current = { conn, handler: this.onConnection(conn), reader, unwatch: () => undefined };
    const cur = this.current;
    cur.unwatch = watchReadable(fd, () => this.read());
  }

  /** Every whole message the connection has now, in order; then its end, if it ended. */
  private read(): void {
    for (;;) {
      const cur = this.current;
      if (!cur) return;
      const r = cur.reader.next();
      switch (r.kind) {
        case 'wouldBlock':
          return;
        case 'message':
          cur.handler.message(r.message);
          break;
        case 'end':
          closeFds(r.fds);
          this.finishConnection(r.reason, false);
          return;
        case 'malformed':
          closeFds(r.fds);
          this.finishConnection(`malformed message: ${r.reason}`, false);
          return;
      }
    }
  }

  private finishConnection(reason: string, fatal: boolean): void {
    const cur = this.current;
    this.current = null;
    if (cur) {
      cur.unwatch();
      cur.conn.release();
      cur.handler.closed(reason);
    }
    if (fatal || this.stopped || !this.options.reconnect) {
      this.stop();
      this.finish();
      return;
    }
    this.accept(); // one that connected meanwhile raised its signal while we were busy
  }

  /** Stops accepting, ends the current connection, removes the socket file. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.unwatchListener?.();
    this.unwatchListener = null;
    try {
      shutdown(this.listenFd, SHUT_RDWR);
    } catch {
      // not listening any more
    }
    if (this.socketPath) {
      for (const p of [this.socketPath, `${this.socketPath}.lock`]) {
        try {
          fs.unlinkSync(p);
        } catch {
          // already gone
        }
      }
    }
    // The connection, if any, ends when its reader sees the shutdown; then finish().
    if (this.current) this.current.conn.close();
    else this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    closeFds(this.lockFd === null ? [this.listenFd] : [this.listenFd, this.lockFd]);
    this.doneResolve();
  }
}
