// Command-line options, under virtiofsd's names where it has them.
import * as fs from 'fs';
import yargs from 'yargs';
import { LOG_LEVELS, LogLevel } from './logger';

export interface Options {
  socketPath?: string;
  fd?: number;
  sharedDir: string;
  threadPoolSize: number;
  requestQueues: number;
  logLevel: LogLevel;
  logJson: boolean;
  keepServing: boolean;
}

export class UsageError extends Error {}

/** `-o source=DIR` (the C virtiofsd's spelling) becomes --shared-dir. */
function compatOptions(list: string[]): { source?: string } {
  const out: { source?: string } = {};
  for (const item of list.flatMap((s) => s.split(','))) {
    const [k, v] = item.split('=', 2);
    if (k === 'source') out.source = v;
    // other -o options of the C daemon are accepted and ignored until they are implemented
  }
  return out;
}

export function parseOptions(argv: string[]): Options {
  const y = yargs(argv)
    .scriptName('vfsd')
    .usage('$0 --socket-path PATH --shared-dir DIR [options]\n\nA virtio-fs back-end: QEMU connects over vhost-user and the guest mounts DIR.')
    .option('socket-path', { type: 'string', describe: 'vhost-user UNIX socket to listen on' })
    .option('fd', { type: 'number', describe: 'inherited, already listening socket fd (instead of --socket-path)' })
    .option('shared-dir', { type: 'string', describe: 'host directory to export' })
    .option('o', { type: 'string', array: true, describe: 'compatibility: -o source=DIR' })
    .option('thread-pool-size', { type: 'number', default: 0, describe: 'worker threads for blocking filesystem calls (0: inline)' })
    .option('request-queues', { type: 'number', default: 1, describe: 'number of request queues (QEMU num-request-queues)' })
    .option('log-level', { choices: LOG_LEVELS, default: 'info' as LogLevel, describe: 'log level' })
    .option('log-json', { type: 'boolean', default: false, describe: 'log JSON lines instead of text' })
    .option('keep-serving', { type: 'boolean', default: false, describe: 'accept the next front-end after one disconnects (default: exit, as virtiofsd)' })
    .example('$0 --socket-path /tmp/vfsd.sock --shared-dir /srv/share', 'serve /srv/share')
    .strictOptions()
    .version()
    .help()
    .fail((msg, err) => {
      throw new UsageError((err?.message ?? msg).replace(/\s*\n\s*/g, ' '));
    });
  const a = y.parseSync();
  const compat = compatOptions(a.o ?? []);
  const sharedDir = a['shared-dir'] ?? compat.source;
  if (!sharedDir) throw new UsageError('--shared-dir DIR is required');
  if (!fs.existsSync(sharedDir) || !fs.statSync(sharedDir).isDirectory()) throw new UsageError(`shared directory ${sharedDir} does not exist or is not a directory`);
  if (a['socket-path'] === undefined && a.fd === undefined) throw new UsageError('--socket-path PATH or --fd FD is required');
  if (a['socket-path'] !== undefined && a.fd !== undefined) throw new UsageError('--socket-path and --fd are exclusive');
  const queues = a['request-queues'];
  if (!Number.isInteger(queues) || queues < 1 || queues > 255) throw new UsageError('--request-queues must be 1 to 255');
  const pool = a['thread-pool-size'];
  if (!Number.isInteger(pool) || pool < 0 || pool > 1024) throw new UsageError('--thread-pool-size must be 0 to 1024');
  return {
    socketPath: a['socket-path'],
    fd: a.fd,
    sharedDir,
    threadPoolSize: pool,
    requestQueues: queues,
    logLevel: a['log-level'],
    logJson: a['log-json'],
    keepServing: a['keep-serving'],
  };
}
