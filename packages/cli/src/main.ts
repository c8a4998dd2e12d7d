#!/usr/bin/env node
// The vfsd command: serve a host directory to a QEMU guest over vhost-user.
import { Inspection, VirtioFsDevice } from '@vfsd/core';
import { PassthroughFs } from '@vfsd/passthrough';
import { serve } from '@vfsd/vhost';
import { createLogger, vhostLogger } from './logger';
import { Options, UsageError, parseOptions } from './options';

export async function run(argv: string[]): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`vfsd: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const log = createLogger(opts.logLevel, opts.logJson);
  const logger = vhostLogger(log);
  // The visualizer and trace recorder subscribe here (a later issue); nothing listens yet.
  const inspection = new Inspection();
  let server;
  try {
    server = serve({
      socketPath: opts.socketPath,
      fd: opts.fd,
      reconnect: opts.keepServing,
      logger,
      createDevice: () =>
        new VirtioFsDevice({
          fs: new PassthroughFs({ sharedDir: opts.sharedDir, threadPoolSize: opts.threadPoolSize }),
          requestQueues: opts.requestQueues,
          logger,
          inspection,
        }),
    });
  } catch (e) {
    process.stderr.write(`vfsd: ${(e as Error).message}\n`);
    return 1;
  }
  log.info(`serving ${opts.sharedDir} on ${opts.socketPath ?? `fd ${opts.fd}`}`);
  const stop = (sig: string): void => {
    log.info(`${sig}: stopping`);
    void server.stop();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  await server.done;
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
