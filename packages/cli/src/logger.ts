// winston logging with virtiofsd's level names; text to stderr, JSON on request.
import * as winston from 'winston';
import type { Logger } from '@vfsd/vhost';

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug', 'trace', 'off'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel, json: boolean): winston.Logger {
  const levels = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };
  return winston.createLogger({
    levels,
    level: level === 'off' ? 'error' : level,
    silent: level === 'off',
    transports: [new winston.transports.Console({ stderrLevels: Object.keys(levels) })],
    format: json
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
