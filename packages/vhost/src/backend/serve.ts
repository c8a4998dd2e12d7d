// Serving a device on a vhost-user socket: one back-end per front-end connection.
import { Connection, VhostUserListener } from '../transport/listener';
import { VhostUserBackend } from './backend';
import { Logger, VhostUserDevice, consoleLogger } from './device';

export interface ServeOptions {
  socketPath?: string;
  /** An inherited listening socket, instead of socketPath. */
  fd?: number;
  /** Accept the next front-end after one disconnects (default: stop, as virtiofsd exits). */
  reconnect?: boolean;
  /** A device per connection: each front-end starts from a fresh device. */
  createDevice: () => VhostUserDevice;
  logger?: Logger;
  /** Called between bind and listen of socketPath (e.g. --socket-group's chown and chmod). */
  beforeListen?: (socketPath: string) => void;
  /** Told about each new back-end (tests and the inspector use it). */
  onBackend?: (backend: VhostUserBackend) => void;
}

export interface Server {
  readonly listener: VhostUserListener;
  /** The back-end serving the current front-end, if any. */
  readonly current: VhostUserBackend | null;
  /** Resolves when the listener stopped and the last back-end released everything. */
  readonly done: Promise<void>;
  /** Stops accepting and ends the current connection; with `drain`, its requests finish first. */
  stop(options?: { drain?: boolean }): Promise<void>;
}

export function serve(options: ServeOptions): Server {
  const log = options.logger ?? consoleLogger;
  let current: VhostUserBackend | null = null;
  const finished: Promise<void>[] = [];
  const onConnection = (conn: Connection): VhostUserBackend => {
    log.info(`front-end connected (fd ${conn.fd})`);
    const backend = new VhostUserBackend(conn, options.createDevice(), log);
    current = backend;
    finished.push(backend.finished.then(() => void (current === backend && (current = null))));
    options.onBackend?.(backend);
    return backend;
  };
  const listenOpts = { reconnect: options.reconnect ?? false, beforeListen: options.beforeListen };
  let listener: VhostUserListener;
  if (options.fd !== undefined) listener = VhostUserListener.fromFd(options.fd, onConnection, listenOpts);
  else if (options.socketPath) listener = VhostUserListener.listenPath(options.socketPath, onConnection, listenOpts);
  else throw new Error('serve: socketPath or fd is required');
  const done = listener.done.then(() => Promise.all(finished)).then(() => undefined);
  return {
    listener,
    get current() {
      return current;
    },
    done,
    async stop(stopOptions) {
      const backend = current;
      if (stopOptions?.drain && backend) await backend.drain();
      listener.stop();
      await done;
    },
  };
}
