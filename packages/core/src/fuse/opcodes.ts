/**
 * Opcodes, notification codes and protocol-wide constants of <linux/fuse.h>
 * (protocol 7.38). Flag bitmasks live in flags.ts.
 */

/** Major version of the FUSE kernel interface. */
export const FUSE_KERNEL_VERSION = 7;
/** Highest minor version this codec implements. */
export const FUSE_KERNEL_MINOR_VERSION = 38;

/** The node ID of the root inode (a u64 on the wire, hence bigint). */
export const FUSE_ROOT_ID = 1n;

/** The read buffer is required to be at least 8k, but may be much larger. */
export const FUSE_MIN_READ_BUFFER = 8192;

/** Maximum size of the device info strings after cuse_init_out. */
export const CUSE_INIT_INFO_MAX = 4096;

/** Maximum fuse_secctx_header.nr_secctx; extension types above it are other extensions. */
export const FUSE_MAX_NR_SECCTX = 31;

/**
 * Longest name the kernel sends or accepts in a dirent (FUSE_NAME_MAX from
 * fs/fuse/fuse_i.h; not part of the uapi header).
 */
export const FUSE_NAME_MAX = 1024;

/** enum fuse_opcode. FUSE_STATX (52) is 7.39 and not part of this protocol version. */
export enum FuseOpcode {
  FUSE_LOOKUP = 1,
  FUSE_FORGET = 2, // no reply
  FUSE_GETATTR = 3,
  FUSE_SETATTR = 4,
  FUSE_READLINK = 5,
  FUSE_SYMLINK = 6,
  FUSE_MKNOD = 8,
  FUSE_MKDIR = 9,
  FUSE_UNLINK = 10,
  FUSE_RMDIR = 11,
  FUSE_RENAME = 12,
  FUSE_LINK = 13,
  FUSE_OPEN = 14,
  FUSE_READ = 15,
  FUSE_WRITE = 16,
  FUSE_STATFS = 17,
  FUSE_RELEASE = 18,
  FUSE_FSYNC = 20,
  FUSE_SETXATTR = 21,
  FUSE_GETXATTR = 22,
  FUSE_LISTXATTR = 23,
  FUSE_REMOVEXATTR = 24,
  FUSE_FLUSH = 25,
  FUSE_INIT = 26,
  FUSE_OPENDIR = 27,
  FUSE_READDIR = 28,
  FUSE_RELEASEDIR = 29,
  FUSE_FSYNCDIR = 30,
  FUSE_GETLK = 31,
  FUSE_SETLK = 32,
  FUSE_SETLKW = 33,
  FUSE_ACCESS = 34,
  FUSE_CREATE = 35,
  FUSE_INTERRUPT = 36,
  FUSE_BMAP = 37,
  FUSE_DESTROY = 38,
  FUSE_IOCTL = 39,
  FUSE_POLL = 40,
  FUSE_NOTIFY_REPLY = 41,
  FUSE_BATCH_FORGET = 42,
  FUSE_FALLOCATE = 43,
  FUSE_READDIRPLUS = 44,
  FUSE_RENAME2 = 45,
  FUSE_LSEEK = 46,
  FUSE_COPY_FILE_RANGE = 47,
  FUSE_SETUPMAPPING = 48,
  FUSE_REMOVEMAPPING = 49,
  FUSE_SYNCFS = 50,
  FUSE_TMPFILE = 51,

  /* CUSE specific operations */
  CUSE_INIT = 4096,
}

/*
 * Reserved opcodes: a byte-swapped INIT, i.e. a peer of the other endianness.
 * Not members of FuseOpcode: the decoder answers them like any unknown opcode.
 */
export const CUSE_INIT_BSWAP_RESERVED = 1048576; // CUSE_INIT << 8
export const FUSE_INIT_BSWAP_RESERVED = 436207616; // FUSE_INIT << 24

/** enum fuse_notify_code: out_header.error of an unsolicited (unique 0) message. */
export enum FuseNotifyCode {
  FUSE_NOTIFY_POLL = 1,
  FUSE_NOTIFY_INVAL_INODE = 2,
  FUSE_NOTIFY_INVAL_ENTRY = 3,
  FUSE_NOTIFY_STORE = 4,
  FUSE_NOTIFY_RETRIEVE = 5,
  FUSE_NOTIFY_DELETE = 6,
  FUSE_NOTIFY_CODE_MAX = 7,
}

/** Kernel name of an opcode ("FUSE_LOOKUP"), or "UNKNOWN(n)". */
export function opcodeName(opcode: number): string {
  const name: unknown = (FuseOpcode as Record<number, unknown>)[opcode];
  return typeof name === 'string' ? name : `UNKNOWN(${opcode})`;
}

/**
 * Requests the kernel never waits a reply for; the server must not send one.
 * FORGET and BATCH_FORGET drop lookup counts, NOTIFY_REPLY answers a
 * FUSE_NOTIFY_RETRIEVE. INTERRUPT is also not waited for: a server may answer
 * it only with the errors EAGAIN (retry the interrupt later) or ENOSYS
 * (interrupts unsupported), otherwise it sends nothing.
 */
export function isNoReply(opcode: number): boolean {
  return (
    opcode === FuseOpcode.FUSE_FORGET ||
    opcode === FuseOpcode.FUSE_BATCH_FORGET ||
    opcode === FuseOpcode.FUSE_NOTIFY_REPLY ||
    opcode === FuseOpcode.FUSE_INTERRUPT
  );
}
