// Interrupting a thread blocked in a syscall (F_OFD_SETLKW, a FIFO open...). A realtime signal gets a
// handler installed WITHOUT SA_RESTART, so the blocked call returns EINTR instead of being restarted.
// libuv's handlers (process.on('SIG...')) use SA_RESTART and would restart fcntl, hence raw sigaction.
// The handler is libc's getpid: async-signal-safe, harmless when called with the signo argument.
import { dlsymDefault, pthreadSigmask, sigaction, tgkill } from '../sys/libc';
import { SIG_UNBLOCK } from '../sys/constants';

/** SIGRTMIN (34 with glibc) + 6. Nothing in Node or libuv installs it (checked at install time). */
export const CANCEL_SIGNAL = 40;

// struct sigaction (x86-64 glibc): sa_handler @0, sa_mask 128 bytes @8, sa_flags i32 @136, sa_restorer @144.
const SIGACTION_SIZE = 152;
const SA_HANDLER = 0;
const SA_FLAGS = 136;
const SIGSET_SIZE = 128;

let installed = false;

/** Installs the handler once per process (main thread). Throws if someone else owns the signal. */
export function installCancelSignalHandler(): void {
  if (installed) return;
  const handler = dlsymDefault('getpid');
  if (handler === 0n) throw new Error('dlsym(getpid) failed');
  const old = Buffer.alloc(SIGACTION_SIZE);
  if (sigaction(CANCEL_SIGNAL, null, old) < 0) throw new Error('sigaction: cannot read the current handler');
  const current = old.readBigUInt64LE(SA_HANDLER);
  if (current !== 0n && current !== handler) throw new Error(`signal ${CANCEL_SIGNAL} already has a handler`);
  const act = Buffer.alloc(SIGACTION_SIZE);
  act.writeBigUInt64LE(handler, SA_HANDLER);
  act.writeInt32LE(0, SA_FLAGS); // no SA_RESTART: that is the whole point
  const r = sigaction(CANCEL_SIGNAL, act, null);
  if (r < 0) throw new Error(`sigaction(${CANCEL_SIGNAL}) failed: errno ${-r}`);
  installed = true;
}

/** In a worker: make sure the signal is not blocked in this thread's mask (threads inherit masks). */
export function unblockCancelSignal(): void {
  const set = Buffer.alloc(SIGSET_SIZE);
  const bit = CANCEL_SIGNAL - 1;
  set[bit >> 3] |= 1 << (bit & 7);
  pthreadSigmask(SIG_UNBLOCK, set);
}

/** Interrupts whatever syscall thread `tid` of this process is blocked in (it returns EINTR). */
export function kickThread(tid: number): boolean {
  return tgkill(process.pid, tid, CANCEL_SIGNAL) === 0;
}
