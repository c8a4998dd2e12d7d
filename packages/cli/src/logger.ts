// winston logging with virtiofsd's level names; text to stderr, JSON on request, or the system log
// (--syslog: see syslog.ts).
import * as winston from 'winston';
import type { Logger } from '@vfsd/vhost';
import { SyslogTransport, syslogSocketPath } from './syslog';

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug', 'trace', 'off'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * With `syslog`, messages go to the system log (/dev/log) instead of stderr; this throws an Error
 * with a one-line message if nothing listens there.
 */
export function createLogger(level: LogLevel, json: boolean, syslog = false): winston.Logger {
  const levels = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };
  let transport: winston.transport | SyslogTransport;
  if (syslog) {
    const where = syslogSocketPath();
    try {
      transport = new SyslogTransport(where);
    } catch (e) {
      throw new Error(`--syslog: no system log to write to (${(e as Error).message})`);
    }
  } else {
    transport = new winston.transports.Console({ stderrLevels: Object.keys(levels) });
  }
  return winston.createLogger({
    levels,
    level: level === 'off' ? 'error' : level,
    silent: level === 'off',
    transports: [transport],
    format: syslog
      ? winston.format.printf((i) => String(i.message))
      : json
      ? winston.format.combine(winston.format.timestamp(), winston.format.json())
      : winston.format.combine(
          winston.format.timestamp(),
          winston.format.printf((i) => `[${i.timestamp}] [vfsd] ${i.level.toUpperCase()}: ${i.message}`),
        ),
  });
}

/** The vhost package's Logger interface over winston. */
export function vhostLogger(w: winston.Logger): Logger {
  return {
    error: (m) => w.error(m),
    warn: (m) => w.warn(m),
    info: (m) => w.info(m),
    debug: (m) => w.debug(m),
  };
}
