// The listening vhost-user socket and the one front-end connection served at a time.
import * as fs from 'fs';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { AF_UNIX, LOCK_EX, SHUT_RDWR, SOCK_CLOEXEC, SOCK_STREAM, bind, listen, shutdown, socket, sockaddrUn, tryFlock } from '../sys/libc';
import { HEADER_SIZE, Header, decodeHeader } from '../protocol/messages';
import { ReaderCommand, ReaderEvent, ReaderWorkerData } from './reader-events';

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

/** One front-end connection. Replies are written from the main thread (small, blocking writes). */
export class Connection {
  private isClosed = false;
  constructor(readonly fd: number) {}

  get closed(): boolean {
    return this.isClosed;
  }

  send(bytes: Buffer): boolean {
    if (this.isClosed) return false;
    try {
      let off = 0;
      while (off < bytes.length) off += fs.writeSync(this.fd, bytes, off, bytes.length - off);
      return true;
    } catch {
      // EPIPE/ECONNRESET: the reader will report the disconnect.
      return false;
    }
  }

  /** Asks the reader to stop: it wakes from recvmsg and reports `closed`. */
  close(): void {
    if (this.isClosed) return;
    try {
      shutdown(this.fd, SHUT_RDWR);
    } catch {
      // not connected any more
    }
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
  private worker: Worker | null = null;
  private readonly control = new SharedArrayBuffer(4);
  private current: { conn: Connection; handler: ConnectionHandler } | null = null;
  private stopped = false;
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
    const data: ReaderWorkerData = { listenFd: this.listenFd, control: this.control };
    const w = new Worker(path.join(__dirname, 'socket-reader-worker.js'), { workerData: data });
    this.worker = w;
    w.on('message', (e: ReaderEvent) => this.onEvent(e));
    w.on('error', (err) => this.finishConnection(`socket reader failed: ${err.message}`, true));
    w.on('exit', () => {
      this.worker = null;
      this.stop();
    });
    // The worker sits in accept4/recvmsg, where Node cannot stop it: process.exit() would wait for
    // it forever. Shutting the sockets down (synchronous) wakes it.
    const onExit = (): void => this.stop();
    process.once('exit', onExit);
    void this.done.then(() => process.removeListener('exit', onExit));
  }

  private onEvent(e: ReaderEvent): void {
    switch (e.type) {
      case 'connected': {
        if (this.stopped) {
          closeFds([e.fd]);
          return;
        }
        const conn = new Connection(e.fd);
        this.current = { conn, handler: this.onConnection(conn) };
        return;
      }
      case 'message': {
        const bytes = Buffer.from(e.bytes);
        const msg: RawMessage = {
          header: decodeHeader(bytes),
          payload: bytes.subarray(HEADER_SIZE),
          fds: e.fds,
          fdsTruncated: e.fdsTruncated,
        };
        if (!this.current) {
          closeFds(e.fds);
          return;
        }
        this.current.handler.message(msg);
        return;
      }
      case 'malformed':
        closeFds(e.fds);
        this.finishConnection(`malformed message: ${e.reason}`, false);
        return;
      case 'disconnected':
        closeFds(e.fds);
        this.finishConnection(e.reason, false);
        return;
      case 'listener-closed':
        this.stop();
        return;
    }
  }

  private finishConnection(reason: string, fatal: boolean): void {
    const cur = this.current;
    this.current = null;
    if (cur) {
      cur.conn.release();
      cur.handler.closed(reason);
    }
    if (fatal || this.stopped || !this.options.reconnect) {
      this.stop();
      return;
    }
    Atomics.store(new Int32Array(this.control), 0, ReaderCommand.AcceptNext);
    Atomics.notify(new Int32Array(this.control), 0);
  }

  /** Stops accepting, ends the current connection, removes the socket file. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.current) this.current.conn.close();
    Atomics.store(new Int32Array(this.control), 0, ReaderCommand.Exit);
    Atomics.notify(new Int32Array(this.control), 0);
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
    const finish = (): void => {
      closeFds(this.lockFd === null ? [this.listenFd] : [this.listenFd, this.lockFd]);
      this.doneResolve();
    };
    if (this.worker) this.worker.once('exit', finish);
    else finish();
  }
}
