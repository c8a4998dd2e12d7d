#!/usr/bin/env node
// The vfsd command: serve a host directory to a QEMU guest over vhost-user.
import * as path from 'path';
import { FuseOpcode, Inspection, VirtioFsDevice, type RequestLogEntry } from '@vfsd/core';
import { PassthroughFs, probeFileHandles } from '@vfsd/passthrough';
import { serve, type Server } from '@vfsd/vhost';
import { createLogger, vhostLogger } from './logger';
import { CAPABILITIES, Options, UsageError, parseOptions } from './options';
import { raiseNofileLimit } from './sys/rlimit';
import { applySocketGroup, groupId } from './sys/socket-group';
import { pivotIntoSandbox, runSandboxed, sandboxStage } from './sandbox';

function earlyStop(): void {
  process.exit(0);
}
import type { InspectorHandle } from './inspector';

function requestLine(e: RequestLogEntry): string {
  const op = e.opcode === null ? 'UNDECODED' : (FuseOpcode[e.opcode] ?? `OPCODE_${e.opcode}`);
  const result = e.errno ? `errno ${e.errno}` : `ok ${e.len} bytes`;
  const thread = e.thread === undefined ? '' : ` (thread ${e.thread})`;
  return `queue ${e.queue}${thread} unique ${e.unique ?? '-'} ${op}: ${result} in ${e.latencyUs.toFixed(0)} µs`;
}

export async function run(argv: string[]): Promise<number> {
  // Loaded only when used: a daemon without them stays smaller (node's http alone is about 2.5 MB resident).
  if (argv[0] === 'try') return (await import('./try')).runTry(argv.slice(1));
  let opts: Options | 'capabilities' | 'shown';
  try {
    opts = parseOptions(argv);
    if (typeof opts === 'object' && opts.socketGroup !== undefined) groupId(opts.socketGroup);
  } catch (e) {
    if (e instanceof UsageError || (e instanceof Error && /no group named/.test(e.message))) {
      process.stderr.write(`vfsd: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  }
  if (opts === 'shown') return 0;
  if (opts === 'capabilities') {
    process.stdout.write(`${JSON.stringify(CAPABILITIES, null, 2)}\n`);
    return 0;
  }
  const o = opts;
  let log: ReturnType<typeof createLogger>;
  try {
    log = createLogger(o.logLevel, o.logJson, o.syslog);
  } catch (e) {
    process.stderr.write(`vfsd: ${(e as Error).message}\n`);
    return 1;
  }
  const logger = vhostLogger(log);
  const sandboxRoot = o.sandbox === 'namespace' ? sandboxStage() : undefined;
  if (sandboxRoot) {
    // PID 1 of its namespace: a signal with no handler is dropped. Until the daemon serves, a stop
    // request ends it at once.
    process.on('SIGTERM', earlyStop);
    process.on('SIGINT', earlyStop);
  }
  if (o.sandbox === 'namespace' && !sandboxRoot) {
    // This process only launches the sandboxed daemon and waits for it (see sandbox.ts).
    try {
      return await runSandboxed({
        argv,
        sharedDir: o.sharedDir,
        socketPath: o.socketPath === undefined ? undefined : path.resolve(o.socketPath),
        fd: o.fd,
        keepNetwork: o.inspect !== undefined,
        log: (m) => log.error(m),
      });
    } catch (e) {
      process.stderr.write(`vfsd: ${(e as Error).message}\n`);
      return 1;
    }
  }
  for (const n of o.notYetImplemented) log.warn(`${n} is accepted and ignored`);
  if (o.rlimitNofile !== 0) {
    const lim = raiseNofileLimit(o.rlimitNofile);
    log.info(`open file limit ${lim.soft} (hard ${lim.hard})`);
  }
  let fileHandles = o.inodeFileHandles;
  if (fileHandles !== 'never') {
    const why = probeFileHandles(o.sharedDir);
    if (why && fileHandles === 'mandatory') {
      process.stderr.write(`vfsd: --inode-file-handles mandatory: file handles are unusable on ${o.sharedDir}: ${why}\n`);
      return 1;
    }
    if (why) {
      log.warn(`--inode-file-handles prefer: holding inodes by fd (${why})`);
      fileHandles = 'never';
    }
  }
  // The inspector page and the trace recorder observe the actors through this hub.
  const inspection = new Inspection();
  const devices = new Set<VirtioFsDevice>();
  let inspector: InspectorHandle | null = null;
  if (o.inspect !== undefined || o.record) {
    try {
      const { startInspector } = await import('./inspector');
      inspector = await startInspector({
        inspection,
        getDevices: () => {
          for (const d of devices) if (d.actor.getSnapshot().status !== 'active') devices.delete(d);
          return [...devices];
        },
        port: o.inspect ?? null,
        host: '127.0.0.1',
        record: o.record,
      });
    } catch (e) {
      process.stderr.write(`vfsd: cannot start the inspector: ${(e as Error).message}\n`);
      return 1;
    }
    if (inspector.url) log.info(`inspector: ${inspector.url}`);
    if (o.record) log.info(`recording actor events to ${o.record}`);
  }
  const debug = o.logLevel === 'debug' || o.logLevel === 'trace';
  // The shared directory as this process reaches it (another path once inside the sandbox).
  let share = o.sharedDir;
  let server: Server;
  try {
    server = serve({
      socketPath: o.socketPath,
      fd: o.fd,
      reconnect: o.keepServing,
      logger,
      beforeListen: o.socketGroup === undefined ? undefined : (p) => applySocketGroup(p, o.socketGroup!),
      createDevice: () => {
        const device = new VirtioFsDevice({
          fs: new PassthroughFs({
            sharedDir: share,
            threadPoolSize: o.threadPoolSize,
            queueThreads: o.queueThreads,
            securityLabel: o.securityLabel,
            cache: o.cache,
            xattr: o.xattr,
            readonly: o.readonly,
            writeback: o.writeback,
            posixAcl: o.posixAcl,
            announceSubmounts: o.announceSubmounts,
            killprivV2: o.killprivV2,
            posixLocks: o.posixLocks,
            flockLocks: o.flockLocks,
            readdirplus: o.readdirplus,
            allowDirectIo: o.allowDirectIo,
            preserveNoatime: o.preserveNoatime,
            allowMmap: o.allowMmap,
            inodeFileHandles: fileHandles,
            inodeFdCache: o.inodeFdCache,
            migration: o.migration,
            pool: inspector ? { inspect: inspector.poolInspect } : undefined,
          }),
          requestQueues: o.requestQueues,
          queueThreads: o.queueThreads,
          queueCpus: o.queueCpus,
          tag: o.tag,
          logger,
          inspection,
          onRequestDone: debug ? (e) => log.debug(requestLine(e)) : undefined,
        });
        devices.add(device);
        return device;
      },
    });
  } catch (e) {
    await inspector?.close();
    process.stderr.write(`vfsd: ${(e as Error).message}\n`);
    return 1;
  }
  if (sandboxRoot) {
    try {
      share = pivotIntoSandbox(sandboxRoot, o.sharedDir);
    } catch (e) {
      process.stderr.write(`vfsd: --sandbox namespace: ${(e as Error).message}\n`);
      await server.stop();
      return 1;
    }
    log.info(`sandbox: new mount, pid${o.inspect === undefined ? ' and network' : ''} namespaces; the share is ${share}, no other host path is reachable`);
  }
  log.info(`serving ${o.sharedDir} on ${o.socketPath ?? `fd ${o.fd}`}`);
  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) {
      // A second signal: stop waiting for the drain (as PID 1 in the sandbox nothing else would end it).
      log.warn(`${sig} again: stopping now`);
      process.exit(1);
    }
    stopping = true;
    log.info(`${sig}: finishing the requests in flight, then stopping`);
    void server.stop({ drain: true });
  };
  process.off('SIGTERM', earlyStop);
  process.off('SIGINT', earlyStop);
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await server.done;
  await inspector?.close(); // flushes the trace
  log.info('stopped');
  return 0;
}

if (require.main === module) {
  run(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: Error) => {
      process.stderr.write(`vfsd: ${e.stack ?? e.message}\n`);
      process.exitCode = 1;
    },
  );
}
