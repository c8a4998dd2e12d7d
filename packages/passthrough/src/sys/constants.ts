// Linux x86-64 constants the passthrough needs that Node's fs.constants lacks.
export const O_PATH = 0o10000000;
export const O_NOFOLLOW = 0o400000;
export const O_CLOEXEC = 0o2000000;
export const O_DIRECTORY = 0o200000;
export const O_NONBLOCK = 0o4000;
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_ACCMODE = 3;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NOCTTY = 0o400;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;

export const F_DUPFD_CLOEXEC = 1030;
export const F_OFD_GETLK = 36;
export const F_OFD_SETLK = 37;
export const F_OFD_SETLKW = 38;

export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;
export const SEEK_SET = 0;

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

export const SIG_UNBLOCK = 1;

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFIFO = 0o010000;
export const S_IFLNK = 0o120000;

/** The kernel's OFFSET_MAX: a fuse_file_lock end meaning "to end of file". */
export const OFFSET_MAX = 0x7fffffffffffffffn;

export const O_TRUNC_FLAG = 0o1000;
export const O_TMPFILE = 0o20000000 | 0o200000;
export const AT_REMOVEDIR = 0x200;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;
export const S_IFREG = 0o100000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFSOCK = 0o140000;

// FATTR_* of fuse_setattr_in.valid, from the wire ABI.
export {
  FATTR_MODE,
  FATTR_UID,
  FATTR_GID,
  FATTR_SIZE,
  FATTR_ATIME,
  FATTR_MTIME,
  FATTR_FH,
  FATTR_ATIME_NOW,
  FATTR_MTIME_NOW,
  FATTR_KILL_SUIDGID,
} from '@vfsd/core/abi';

export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_IXGRP = 0o010;

export const UTIME_NOW = (1 << 30) - 1;
export const UTIME_OMIT = (1 << 30) - 2;
