// --syslog: log to the system log as virtiofsd does, one RFC 3164-style datagram per message to
// /dev/log (facility user, tag "vfsd[pid]"), as glibc's syslog(3) writes them.
import * as winston from 'winston';
import { closeFd, connectDgram, sendDgram } from './sys/unix-dgram';

/** Where the system log listens. VFSD_SYSLOG_SOCKET overrides it, for tests only. */
export function syslogSocketPath(): string {
  return process.env.VFSD_SYSLOG_SOCKET || '/dev/log';
}

const FACILITY_USER = 1;
// syslog severities: err 3, warning 4, info 6, debug 7.
const SEVERITY: Record<string, number> = { error: 3, warn: 4, info: 6, debug: 7, trace: 7 };
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `<PRI>Mmm dd hh:mm:ss TAG[PID]: MESSAGE` (RFC 3164, local time, as glibc's syslog(3)). */
export function formatSyslog(level: string, message: string, date = new Date(), tag = 'vfsd', pid = process.pid): string {
  const pri = FACILITY_USER * 8 + (SEVERITY[level] ?? 6);
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const ts = `${MONTHS[date.getMonth()]} ${String(date.getDate()).padStart(2, ' ')} ${p2(date.getHours())}:${p2(date.getMinutes())}:${p2(date.getSeconds())}`;
  // One datagram is one record: keep it on one line.
  return `<${pri}>${ts} ${tag}[${pid}]: ${message.replace(/\r?\n/g, ' ')}`;
}

/**
 * A winston transport writing to a connected UNIX datagram socket. Sends never block: when the
 * log daemon lags (EAGAIN) a message is dropped and counted, as a daemon must not stall on logging.
 */
// winston's own export of winston-transport's class (winston.Transport at run time; untyped).
const TransportStream = (winston as unknown as { Transport: typeof import('winston-transport') }).Transport;

export class SyslogTransport extends TransportStream {
  private fd: number;
  dropped = 0;

  /** Connects at once; throws (SysError) if nothing listens at `path`. */
  constructor(readonly path: string = syslogSocketPath(), opts: import('winston-transport').TransportStreamOptions = {}) {
    super(opts);
    this.fd = connectDgram(path);
  }

  override log(info: { level: string; message: unknown }, next: () => void): void {
    if (this.fd >= 0) {
      const text = typeof info.message === 'string' ? info.message : JSON.stringify(info.message);
      const err = sendDgram(this.fd, Buffer.from(formatSyslog(info.level, text)));
      if (err) this.dropped++;
    }
    next();
  }

  override close(): void {
    if (this.fd >= 0) closeFd(this.fd);
    this.fd = -1;
  }
}
