/**
 * Every struct of <linux/fuse.h> (protocol 7.38), declared once with the
 * kernel's field names. Sizes are asserted at load time by defineStruct and
 * every offset is checked by the tests against a gcc-generated table.
 *
 * Value types: 64-bit fields are bigint (nodeid, fh, unique, lock owners,
 * offsets, lengths, times...), all narrower fields are number. Padding and
 * reserved fields (padding, dummy, unused, spare) are declared with pad() and
 * are absent from values; they are written as zeros.
 *
 * One deliberate deviation from the header's spelling: the seconds fields of
 * fuse_attr and fuse_setattr_in (atime/mtime/ctime) are uint64_t in fuse.h but
 * the kernel copies them to and from signed time64_t, so they are declared
 * i64 here: a pre-1970 time is a negative bigint both ways. Same bytes.
 */
import { defineStruct, pad, type StructInputType, type StructType } from './layout';

// ---------------------------------------------------------------------------
// Building blocks

export const fuse_attr = defineStruct('fuse_attr', 88, {
  ino: 'u64',
  size: 'u64',
  blocks: 'u64',
  atime: 'i64',
  mtime: 'i64',
  ctime: 'i64',
  atimensec: 'u32',
  mtimensec: 'u32',
  ctimensec: 'u32',
  mode: 'u32',
  nlink: 'u32',
  uid: 'u32',
  gid: 'u32',
  rdev: 'u32',
  blksize: 'u32',
  flags: 'u32', // FUSE_ATTR_*
});
export type FuseAttr = StructType<typeof fuse_attr>;

/** The fields of an attr a reply carries, whichever form it has (decoded, or wire bytes). */
export function fuseAttrOf(attr: FuseAttr | Uint8Array): FuseAttr {
  return attr instanceof Uint8Array ? fuse_attr.decode(attr) : attr;
}

export const fuse_kstatfs = defineStruct('fuse_kstatfs', 80, {
  blocks: 'u64',
  bfree: 'u64',
  bavail: 'u64',
  files: 'u64',
  ffree: 'u64',
  bsize: 'u32',
  namelen: 'u32',
  frsize: 'u32',
  padding: pad(),
  spare: pad('u32', 6),
});
export type FuseKstatfs = StructType<typeof fuse_kstatfs>;

export const fuse_file_lock = defineStruct('fuse_file_lock', 24, {
  start: 'u64',
  end: 'u64',
  type: 'u32',
  pid: 'u32', // tgid
});
export type FuseFileLock = StructType<typeof fuse_file_lock>;

// ---------------------------------------------------------------------------
// Headers

export const fuse_in_header = defineStruct('fuse_in_header', 40, {
  len: 'u32',
  opcode: 'u32',
  unique: 'u64',
  nodeid: 'u64',
  uid: 'u32',
  gid: 'u32',
  pid: 'u32',
  total_extlen: 'u16', // length of extensions in 8 byte units (7.38)
  padding: pad('u16'),
});
export type FuseInHeader = StructType<typeof fuse_in_header>;

export const fuse_out_header = defineStruct('fuse_out_header', 16, {
  len: 'u32',
  error: 'i32', // 0 or -errno; a notify code when unique is 0
  unique: 'u64',
});
export type FuseOutHeader = StructType<typeof fuse_out_header>;

// ---------------------------------------------------------------------------
// Lookup, attributes, forget

export const FUSE_COMPAT_ENTRY_OUT_SIZE = 120;

export const fuse_entry_out = defineStruct('fuse_entry_out', 128, {
  nodeid: 'u64',
  generation: 'u64',
  entry_valid: 'u64',
  attr_valid: 'u64',
  entry_valid_nsec: 'u32',
  attr_valid_nsec: 'u32',
  attr: fuse_attr,
});
export type FuseEntryOut = StructType<typeof fuse_entry_out>;
/** fuse_entry_out as a reply takes it: its attr may be fuse_attr's wire bytes (layout.ts, WireBytes). */
export type FuseEntryOutReply = StructInputType<typeof fuse_entry_out>;

export const fuse_forget_in = defineStruct('fuse_forget_in', 8, {
  nlookup: 'u64',
});
export type FuseForgetIn = StructType<typeof fuse_forget_in>;

export const fuse_forget_one = defineStruct('fuse_forget_one', 16, {
  nodeid: 'u64',
  nlookup: 'u64',
});
export type FuseForgetOne = StructType<typeof fuse_forget_one>;

export const fuse_batch_forget_in = defineStruct('fuse_batch_forget_in', 8, {
  count: 'u32',
  dummy: pad(),
});
export type FuseBatchForgetIn = StructType<typeof fuse_batch_forget_in>;

export const fuse_getattr_in = defineStruct('fuse_getattr_in', 16, {
  getattr_flags: 'u32', // FUSE_GETATTR_*
  dummy: pad(),
  fh: 'u64',
});
export type FuseGetattrIn = StructType<typeof fuse_getattr_in>;

export const FUSE_COMPAT_ATTR_OUT_SIZE = 96;

export const fuse_attr_out = defineStruct('fuse_attr_out', 104, {
  attr_valid: 'u64',
  attr_valid_nsec: 'u32',
  dummy: pad(),
  attr: fuse_attr,
});
export type FuseAttrOut = StructType<typeof fuse_attr_out>;
/** fuse_attr_out as a reply takes it: its attr may be fuse_attr's wire bytes (layout.ts, WireBytes). */
export type FuseAttrOutReply = StructInputType<typeof fuse_attr_out>;

export const fuse_setattr_in = defineStruct('fuse_setattr_in', 88, {
  valid: 'u32', // FATTR_*
  padding: pad(),
  fh: 'u64',
  size: 'u64',
  lock_owner: 'u64',
  atime: 'i64',
  mtime: 'i64',
  ctime: 'i64',
  atimensec: 'u32',
  mtimensec: 'u32',
  ctimensec: 'u32',
  mode: 'u32',
  unused4: pad(),
  uid: 'u32',
  gid: 'u32',
  unused5: pad(),
});
export type FuseSetattrIn = StructType<typeof fuse_setattr_in>;

// ---------------------------------------------------------------------------
// Namespace operations

export const FUSE_COMPAT_MKNOD_IN_SIZE = 8;

export const fuse_mknod_in = defineStruct('fuse_mknod_in', 16, {
  mode: 'u32',
  rdev: 'u32',
  umask: 'u32',
  padding: pad(),
});
export type FuseMknodIn = StructType<typeof fuse_mknod_in>;

export const fuse_mkdir_in = defineStruct('fuse_mkdir_in', 8, {
  mode: 'u32',
  umask: 'u32',
});
export type FuseMkdirIn = StructType<typeof fuse_mkdir_in>;

export const fuse_rename_in = defineStruct('fuse_rename_in', 8, {
  newdir: 'u64',
});
export type FuseRenameIn = StructType<typeof fuse_rename_in>;

export const fuse_rename2_in = defineStruct('fuse_rename2_in', 16, {
  newdir: 'u64',
  flags: 'u32', // RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT
  padding: pad(),
});
export type FuseRename2In = StructType<typeof fuse_rename2_in>;

export const fuse_link_in = defineStruct('fuse_link_in', 8, {
  oldnodeid: 'u64',
});
export type FuseLinkIn = StructType<typeof fuse_link_in>;

// ---------------------------------------------------------------------------
// Open files

export const fuse_open_in = defineStruct('fuse_open_in', 8, {
  flags: 'u32', // open(2) flags
  open_flags: 'u32', // FUSE_OPEN_*
});
export type FuseOpenIn = StructType<typeof fuse_open_in>;

export const fuse_create_in = defineStruct('fuse_create_in', 16, {
  flags: 'u32',
  mode: 'u32',
  umask: 'u32',
  open_flags: 'u32', // FUSE_OPEN_*
});
export type FuseCreateIn = StructType<typeof fuse_create_in>;

export const fuse_open_out = defineStruct('fuse_open_out', 16, {
  fh: 'u64',
  open_flags: 'u32', // FOPEN_*
  padding: pad(),
});
export type FuseOpenOut = StructType<typeof fuse_open_out>;

export const fuse_release_in = defineStruct('fuse_release_in', 24, {
  fh: 'u64',
  flags: 'u32',
  release_flags: 'u32', // FUSE_RELEASE_*
  lock_owner: 'u64',
});
export type FuseReleaseIn = StructType<typeof fuse_release_in>;

export const fuse_flush_in = defineStruct('fuse_flush_in', 24, {
  fh: 'u64',
  unused: pad(),
  padding: pad(),
  lock_owner: 'u64',
});
export type FuseFlushIn = StructType<typeof fuse_flush_in>;

export const fuse_read_in = defineStruct('fuse_read_in', 40, {
  fh: 'u64',
  offset: 'u64',
  size: 'u32',
  read_flags: 'u32', // FUSE_READ_*
  lock_owner: 'u64',
  flags: 'u32', // open(2) flags of the file
  padding: pad(),
});
export type FuseReadIn = StructType<typeof fuse_read_in>;

export const FUSE_COMPAT_WRITE_IN_SIZE = 24;

export const fuse_write_in = defineStruct('fuse_write_in', 40, {
  fh: 'u64',
  offset: 'u64',
  size: 'u32',
  write_flags: 'u32', // FUSE_WRITE_*
  lock_owner: 'u64',
  flags: 'u32',
  padding: pad(),
});
export type FuseWriteIn = StructType<typeof fuse_write_in>;

export const fuse_write_out = defineStruct('fuse_write_out', 8, {
  size: 'u32',
  padding: pad(),
});
export type FuseWriteOut = StructType<typeof fuse_write_out>;

export const FUSE_COMPAT_STATFS_SIZE = 48;

export const fuse_statfs_out = defineStruct('fuse_statfs_out', 80, {
  st: fuse_kstatfs,
});
export type FuseStatfsOut = StructType<typeof fuse_statfs_out>;

export const fuse_fsync_in = defineStruct('fuse_fsync_in', 16, {
  fh: 'u64',
  fsync_flags: 'u32', // FUSE_FSYNC_*
  padding: pad(),
});
export type FuseFsyncIn = StructType<typeof fuse_fsync_in>;

// ---------------------------------------------------------------------------
// Extended attributes

/** Size of fuse_setxattr_in unless FUSE_SETXATTR_EXT was negotiated. */
export const FUSE_COMPAT_SETXATTR_IN_SIZE = 8;

export const fuse_setxattr_in = defineStruct('fuse_setxattr_in', 16, {
  size: 'u32',
  flags: 'u32', // XATTR_CREATE / XATTR_REPLACE
  setxattr_flags: 'u32', // FUSE_SETXATTR_* (7.33, only with FUSE_SETXATTR_EXT)
  padding: pad(),
});
export type FuseSetxattrIn = StructType<typeof fuse_setxattr_in>;

export const fuse_getxattr_in = defineStruct('fuse_getxattr_in', 8, {
  size: 'u32',
  padding: pad(),
});
export type FuseGetxattrIn = StructType<typeof fuse_getxattr_in>;

export const fuse_getxattr_out = defineStruct('fuse_getxattr_out', 8, {
  size: 'u32',
  padding: pad(),
});
export type FuseGetxattrOut = StructType<typeof fuse_getxattr_out>;

// ---------------------------------------------------------------------------
// Locks, access

export const fuse_lk_in = defineStruct('fuse_lk_in', 48, {
  fh: 'u64',
  owner: 'u64',
  lk: fuse_file_lock,
  lk_flags: 'u32', // FUSE_LK_*
  padding: pad(),
});
export type FuseLkIn = StructType<typeof fuse_lk_in>;

export const fuse_lk_out = defineStruct('fuse_lk_out', 24, {
  lk: fuse_file_lock,
});
export type FuseLkOut = StructType<typeof fuse_lk_out>;

export const fuse_access_in = defineStruct('fuse_access_in', 8, {
  mask: 'u32',
  padding: pad(),
});
export type FuseAccessIn = StructType<typeof fuse_access_in>;

// ---------------------------------------------------------------------------
// INIT (FUSE and CUSE)

export const fuse_init_in = defineStruct('fuse_init_in', 64, {
  major: 'u32',
  minor: 'u32',
  max_readahead: 'u32',
  flags: 'u32', // init flags, bits 0..31
  flags2: 'u32', // init flags, bits 32..63 (7.36, valid with FUSE_INIT_EXT)
  unused: pad('u32', 11),
});
export type FuseInitIn = StructType<typeof fuse_init_in>;

/** fuse_init_out size for a kernel minor < 5. */
export const FUSE_COMPAT_INIT_OUT_SIZE = 8;
/** fuse_init_out size for a kernel minor < 23. */
export const FUSE_COMPAT_22_INIT_OUT_SIZE = 24;

export const fuse_init_out = defineStruct('fuse_init_out', 64, {
  major: 'u32',
  minor: 'u32',
  max_readahead: 'u32',
  flags: 'u32',
  max_background: 'u16',
  congestion_threshold: 'u16',
  max_write: 'u32',
  time_gran: 'u32',
  max_pages: 'u16',
  map_alignment: 'u16',
  flags2: 'u32',
  unused: pad('u32', 7),
});
export type FuseInitOut = StructType<typeof fuse_init_out>;

export const cuse_init_in = defineStruct('cuse_init_in', 16, {
  major: 'u32',
  minor: 'u32',
  unused: pad(),
  flags: 'u32', // CUSE_*
});
export type CuseInitIn = StructType<typeof cuse_init_in>;

export const cuse_init_out = defineStruct('cuse_init_out', 72, {
  major: 'u32',
  minor: 'u32',
  unused: pad(),
  flags: 'u32',
  max_read: 'u32',
  max_write: 'u32',
  dev_major: 'u32', // chardev major
  dev_minor: 'u32', // chardev minor
  spare: pad('u32', 10),
});
export type CuseInitOut = StructType<typeof cuse_init_out>;

// ---------------------------------------------------------------------------
// Interrupt, bmap, ioctl, poll, fallocate

export const fuse_interrupt_in = defineStruct('fuse_interrupt_in', 8, {
  unique: 'u64',
});
export type FuseInterruptIn = StructType<typeof fuse_interrupt_in>;

export const fuse_bmap_in = defineStruct('fuse_bmap_in', 16, {
  block: 'u64',
  blocksize: 'u32',
  padding: pad(),
});
export type FuseBmapIn = StructType<typeof fuse_bmap_in>;

export const fuse_bmap_out = defineStruct('fuse_bmap_out', 8, {
  block: 'u64',
});
export type FuseBmapOut = StructType<typeof fuse_bmap_out>;

export const fuse_ioctl_in = defineStruct('fuse_ioctl_in', 32, {
  fh: 'u64',
  flags: 'u32', // FUSE_IOCTL_*
  cmd: 'u32',
  arg: 'u64',
  in_size: 'u32',
  out_size: 'u32',
});
export type FuseIoctlIn = StructType<typeof fuse_ioctl_in>;

export const fuse_ioctl_iovec = defineStruct('fuse_ioctl_iovec', 16, {
  base: 'u64',
  len: 'u64',
});
export type FuseIoctlIovec = StructType<typeof fuse_ioctl_iovec>;

export const fuse_ioctl_out = defineStruct('fuse_ioctl_out', 16, {
  result: 'i32',
  flags: 'u32',
  in_iovs: 'u32',
  out_iovs: 'u32',
});
export type FuseIoctlOut = StructType<typeof fuse_ioctl_out>;

export const fuse_poll_in = defineStruct('fuse_poll_in', 24, {
  fh: 'u64',
  kh: 'u64',
  flags: 'u32', // FUSE_POLL_*
  events: 'u32',
});
export type FusePollIn = StructType<typeof fuse_poll_in>;

export const fuse_poll_out = defineStruct('fuse_poll_out', 8, {
  revents: 'u32',
  padding: pad(),
});
export type FusePollOut = StructType<typeof fuse_poll_out>;

export const fuse_notify_poll_wakeup_out = defineStruct('fuse_notify_poll_wakeup_out', 8, {
  kh: 'u64',
});
export type FuseNotifyPollWakeupOut = StructType<typeof fuse_notify_poll_wakeup_out>;

export const fuse_fallocate_in = defineStruct('fuse_fallocate_in', 32, {
  fh: 'u64',
  offset: 'u64',
  length: 'u64',
  mode: 'u32', // FALLOC_FL_*
  padding: pad(),
});
export type FuseFallocateIn = StructType<typeof fuse_fallocate_in>;

// ---------------------------------------------------------------------------
// Directory entries (followed by the name, padded with FUSE_DIRENT_ALIGN)

export const fuse_dirent = defineStruct('fuse_dirent', 24, {
  ino: 'u64',
  off: 'u64', // offset of the *next* entry, for the following READDIR
  namelen: 'u32',
  type: 'u32', // DT_* (mode >> 12)
  // char name[] follows at FUSE_NAME_OFFSET
});
export type FuseDirent = StructType<typeof fuse_dirent>;

export const fuse_direntplus = defineStruct('fuse_direntplus', 152, {
  entry_out: fuse_entry_out,
  dirent: fuse_dirent,
  // char name[] follows at FUSE_NAME_OFFSET_DIRENTPLUS
});
export type FuseDirentplus = StructType<typeof fuse_direntplus>;

/** offsetof(struct fuse_dirent, name). */
export const FUSE_NAME_OFFSET = 24;
/** offsetof(struct fuse_direntplus, dirent.name). */
export const FUSE_NAME_OFFSET_DIRENTPLUS = 152;

/** FUSE_REC_ALIGN / FUSE_DIRENT_ALIGN: round up to a multiple of 8. */
export function recAlign(x: number): number {
  return (x + 7) & ~7;
}

/** FUSE_DIRENT_SIZE for a name of `namelen` bytes. */
export function direntSize(namelen: number): number {
  return recAlign(FUSE_NAME_OFFSET + namelen);
}

/** FUSE_DIRENTPLUS_SIZE for a name of `namelen` bytes. */
export function direntplusSize(namelen: number): number {
  return recAlign(FUSE_NAME_OFFSET_DIRENTPLUS + namelen);
}

// ---------------------------------------------------------------------------
// Notifications (server -> kernel, out_header.unique = 0, error = code)

export const fuse_notify_inval_inode_out = defineStruct('fuse_notify_inval_inode_out', 24, {
  ino: 'u64',
  off: 'i64',
  len: 'i64',
});
export type FuseNotifyInvalInodeOut = StructType<typeof fuse_notify_inval_inode_out>;

export const fuse_notify_inval_entry_out = defineStruct('fuse_notify_inval_entry_out', 16, {
  parent: 'u64',
  namelen: 'u32',
  flags: 'u32', // FUSE_EXPIRE_ONLY
});
export type FuseNotifyInvalEntryOut = StructType<typeof fuse_notify_inval_entry_out>;

export const fuse_notify_delete_out = defineStruct('fuse_notify_delete_out', 24, {
  parent: 'u64',
  child: 'u64',
  namelen: 'u32',
  padding: pad(),
});
export type FuseNotifyDeleteOut = StructType<typeof fuse_notify_delete_out>;

export const fuse_notify_store_out = defineStruct('fuse_notify_store_out', 24, {
  nodeid: 'u64',
  offset: 'u64',
  size: 'u32',
  padding: pad(),
});
export type FuseNotifyStoreOut = StructType<typeof fuse_notify_store_out>;

export const fuse_notify_retrieve_out = defineStruct('fuse_notify_retrieve_out', 32, {
  notify_unique: 'u64',
  nodeid: 'u64',
  offset: 'u64',
  size: 'u32',
  padding: pad(),
});
export type FuseNotifyRetrieveOut = StructType<typeof fuse_notify_retrieve_out>;

/** Argument of the kernel's FUSE_NOTIFY_REPLY; matches the size of fuse_write_in. */
export const fuse_notify_retrieve_in = defineStruct('fuse_notify_retrieve_in', 40, {
  dummy1: pad('u64'),
  offset: 'u64',
  size: 'u32',
  dummy2: pad(),
  dummy3: pad('u64'),
  dummy4: pad('u64'),
});
export type FuseNotifyRetrieveIn = StructType<typeof fuse_notify_retrieve_in>;

// ---------------------------------------------------------------------------
// lseek, copy_file_range, DAX mappings, syncfs

export const fuse_lseek_in = defineStruct('fuse_lseek_in', 24, {
  fh: 'u64',
  offset: 'u64',
  whence: 'u32', // SEEK_DATA / SEEK_HOLE (others are handled by the kernel)
  padding: pad(),
});
export type FuseLseekIn = StructType<typeof fuse_lseek_in>;

export const fuse_lseek_out = defineStruct('fuse_lseek_out', 8, {
  offset: 'u64',
});
export type FuseLseekOut = StructType<typeof fuse_lseek_out>;

export const fuse_copy_file_range_in = defineStruct('fuse_copy_file_range_in', 56, {
  fh_in: 'u64',
  off_in: 'u64',
  nodeid_out: 'u64',
  fh_out: 'u64',
  off_out: 'u64',
  len: 'u64',
  flags: 'u64',
});
export type FuseCopyFileRangeIn = StructType<typeof fuse_copy_file_range_in>;

export const fuse_setupmapping_in = defineStruct('fuse_setupmapping_in', 40, {
  fh: 'u64', // an already open handle
  foffset: 'u64', // offset into the file to start the mapping
  len: 'u64', // length of mapping required
  flags: 'u64', // FUSE_SETUPMAPPING_FLAG_*
  moffset: 'u64', // offset in the DAX window
});
export type FuseSetupmappingIn = StructType<typeof fuse_setupmapping_in>;

export const fuse_removemapping_in = defineStruct('fuse_removemapping_in', 4, {
  count: 'u32', // number of fuse_removemapping_one that follow (at offset 4!)
});
export type FuseRemovemappingIn = StructType<typeof fuse_removemapping_in>;

export const fuse_removemapping_one = defineStruct('fuse_removemapping_one', 16, {
  moffset: 'u64',
  len: 'u64',
});
export type FuseRemovemappingOne = StructType<typeof fuse_removemapping_one>;

export const fuse_syncfs_in = defineStruct('fuse_syncfs_in', 8, {
  padding: pad('u64'),
});
export type FuseSyncfsIn = StructType<typeof fuse_syncfs_in>;

// ---------------------------------------------------------------------------
// Request extensions (7.38): security context and the generic header

export const fuse_secctx = defineStruct('fuse_secctx', 8, {
  size: 'u32', // bytes of the context value that follows the NUL-terminated name
  padding: pad(),
});
export type FuseSecctx = StructType<typeof fuse_secctx>;

export const fuse_secctx_header = defineStruct('fuse_secctx_header', 8, {
  size: 'u32', // total, including this header
  nr_secctx: 'u32',
});
export type FuseSecctxHeader = StructType<typeof fuse_secctx_header>;

export const fuse_ext_header = defineStruct('fuse_ext_header', 8, {
  size: 'u32', // total size of this extension including this header
  type: 'u32', // 0..FUSE_MAX_NR_SECCTX: a fuse_secctx_header's nr_secctx
});
export type FuseExtHeader = StructType<typeof fuse_ext_header>;
