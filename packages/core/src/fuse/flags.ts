/**
 * Flag bitmasks of <linux/fuse.h> (7.38), with the kernel's names.
 *
 * Types follow the field they go into: flags of u32 fields are numbers, flags
 * of u64 fields (setupmapping) are bigints. INIT flags are a 64-bit set split
 * over fuse_init_in/out.flags (bits 0..31) and .flags2 (bits 32..63), so they
 * are bigints too: combine the halves with joinInitFlags / splitInitFlags.
 *
 * Test a u32 mask with `(x & FLAG) !== 0`: in JS `x & (1 << 31)` is negative.
 */

// fuse_setattr_in.valid
export const FATTR_MODE = 1 << 0;
export const FATTR_UID = 1 << 1;
export const FATTR_GID = 1 << 2;
export const FATTR_SIZE = 1 << 3;
export const FATTR_ATIME = 1 << 4;
export const FATTR_MTIME = 1 << 5;
export const FATTR_FH = 1 << 6;
export const FATTR_ATIME_NOW = 1 << 7;
export const FATTR_MTIME_NOW = 1 << 8;
export const FATTR_LOCKOWNER = 1 << 9;
export const FATTR_CTIME = 1 << 10;
export const FATTR_KILL_SUIDGID = 1 << 11;

// fuse_open_out.open_flags
export const FOPEN_DIRECT_IO = 1 << 0;
export const FOPEN_KEEP_CACHE = 1 << 1;
export const FOPEN_NONSEEKABLE = 1 << 2;
export const FOPEN_CACHE_DIR = 1 << 3;
export const FOPEN_STREAM = 1 << 4;
export const FOPEN_NOFLUSH = 1 << 5;
export const FOPEN_PARALLEL_DIRECT_WRITES = 1 << 6;

// INIT request/reply flags (64-bit; see joinInitFlags / splitInitFlags)
export const FUSE_ASYNC_READ = 1n << 0n;
export const FUSE_POSIX_LOCKS = 1n << 1n;
export const FUSE_FILE_OPS = 1n << 2n;
export const FUSE_ATOMIC_O_TRUNC = 1n << 3n;
export const FUSE_EXPORT_SUPPORT = 1n << 4n;
export const FUSE_BIG_WRITES = 1n << 5n;
export const FUSE_DONT_MASK = 1n << 6n;
export const FUSE_SPLICE_WRITE = 1n << 7n;
export const FUSE_SPLICE_MOVE = 1n << 8n;
export const FUSE_SPLICE_READ = 1n << 9n;
export const FUSE_FLOCK_LOCKS = 1n << 10n;
export const FUSE_HAS_IOCTL_DIR = 1n << 11n;
export const FUSE_AUTO_INVAL_DATA = 1n << 12n;
export const FUSE_DO_READDIRPLUS = 1n << 13n;
export const FUSE_READDIRPLUS_AUTO = 1n << 14n;
export const FUSE_ASYNC_DIO = 1n << 15n;
export const FUSE_WRITEBACK_CACHE = 1n << 16n;
export const FUSE_NO_OPEN_SUPPORT = 1n << 17n;
export const FUSE_PARALLEL_DIROPS = 1n << 18n;
export const FUSE_HANDLE_KILLPRIV = 1n << 19n;
export const FUSE_POSIX_ACL = 1n << 20n;
export const FUSE_ABORT_ERROR = 1n << 21n;
export const FUSE_MAX_PAGES = 1n << 22n;
export const FUSE_CACHE_SYMLINKS = 1n << 23n;
export const FUSE_NO_OPENDIR_SUPPORT = 1n << 24n;
export const FUSE_EXPLICIT_INVAL_DATA = 1n << 25n;
export const FUSE_MAP_ALIGNMENT = 1n << 26n;
export const FUSE_SUBMOUNTS = 1n << 27n;
export const FUSE_HANDLE_KILLPRIV_V2 = 1n << 28n;
export const FUSE_SETXATTR_EXT = 1n << 29n;
export const FUSE_INIT_EXT = 1n << 30n;
/** Reserved, do not use. (In C `1 << 31` sign-extends when widened; the bit is 31.) */
export const FUSE_INIT_RESERVED = 1n << 31n;
// bits 32..63 travel in the flags2 field
export const FUSE_SECURITY_CTX = 1n << 32n;
export const FUSE_HAS_INODE_DAX = 1n << 33n;
/** 7.38: CREATE, MKNOD, MKDIR, SYMLINK, LINK and TMPFILE carry the caller's group that owns the parent (FUSE_EXT_GROUPS). */
export const FUSE_CREATE_SUPP_GROUP = 1n << 34n;
export const FUSE_HAS_EXPIRE_ONLY = 1n << 35n;
/** 7.39: files opened with FOPEN_DIRECT_IO may still be mmapped (shared) by the guest. */
export const FUSE_DIRECT_IO_ALLOW_MMAP = 1n << 36n;

/**
 * The 64-bit INIT flag set of a fuse_init_in (or _out). flags2 only counts
 * when FUSE_INIT_EXT is set in flags, as in the kernel and libfuse.
 */
export function joinInitFlags(init: { readonly flags: number; readonly flags2: number }): bigint {
  const low = BigInt(init.flags >>> 0);
  return (low & FUSE_INIT_EXT) !== 0n ? low | (BigInt(init.flags2 >>> 0) << 32n) : low;
}

/**
 * Splits a 64-bit INIT flag set into the flags/flags2 fields of fuse_init_out.
 * If any bit above 31 is set, FUSE_INIT_EXT is set too, since the kernel
 * ignores flags2 without it.
 */
export function splitInitFlags(flags: bigint): { flags: number; flags2: number } {
  let low = flags & 0xffffffffn;
  const high = (flags >> 32n) & 0xffffffffn;
  if (high !== 0n) low |= FUSE_INIT_EXT;
  return { flags: Number(low), flags2: Number(high) };
}

// CUSE INIT request/reply flags
export const CUSE_UNRESTRICTED_IOCTL = 1 << 0;

// fuse_release_in.release_flags
export const FUSE_RELEASE_FLUSH = 1 << 0;
export const FUSE_RELEASE_FLOCK_UNLOCK = 1 << 1;

// fuse_getattr_in.getattr_flags
export const FUSE_GETATTR_FH = 1 << 0;

// fuse_lk_in.lk_flags
export const FUSE_LK_FLOCK = 1 << 0;

// fuse_write_in.write_flags
export const FUSE_WRITE_CACHE = 1 << 0;
export const FUSE_WRITE_LOCKOWNER = 1 << 1;
export const FUSE_WRITE_KILL_SUIDGID = 1 << 2;
/** Obsolete alias; this flag implies killing suid/sgid only. */
export const FUSE_WRITE_KILL_PRIV = FUSE_WRITE_KILL_SUIDGID;

// fuse_read_in.read_flags
export const FUSE_READ_LOCKOWNER = 1 << 1;

// fuse_ioctl_in.flags / fuse_ioctl_out.flags
export const FUSE_IOCTL_COMPAT = 1 << 0;
export const FUSE_IOCTL_UNRESTRICTED = 1 << 1;
export const FUSE_IOCTL_RETRY = 1 << 2;
export const FUSE_IOCTL_32BIT = 1 << 3;
export const FUSE_IOCTL_DIR = 1 << 4;
export const FUSE_IOCTL_COMPAT_X32 = 1 << 5;
/** Maximum of in_iovecs + out_iovecs in an ioctl retry reply. */
export const FUSE_IOCTL_MAX_IOV = 256;

// fuse_poll_in.flags
export const FUSE_POLL_SCHEDULE_NOTIFY = 1 << 0;

// fuse_fsync_in.fsync_flags
export const FUSE_FSYNC_FDATASYNC = 1 << 0;

// fuse_attr.flags
export const FUSE_ATTR_SUBMOUNT = 1 << 0;
export const FUSE_ATTR_DAX = 1 << 1;

// fuse_open_in.open_flags / fuse_create_in.open_flags
export const FUSE_OPEN_KILL_SUIDGID = 1 << 0;

// fuse_setxattr_in.setxattr_flags
export const FUSE_SETXATTR_ACL_KILL_SGID = 1 << 0;

// fuse_notify_inval_entry_out.flags
export const FUSE_EXPIRE_ONLY = 1 << 0;

// fuse_setupmapping_in.flags (a u64 field)
export const FUSE_SETUPMAPPING_FLAG_WRITE = 1n << 0n;
export const FUSE_SETUPMAPPING_FLAG_READ = 1n << 1n;
