/**
 * FUSE wire codec (protocol 7.38, <linux/fuse.h>) for the virtio-fs server.
 *
 * Numbers: every 64-bit wire field (ids, handles, offsets, lengths, lock
 * owners, times, 64-bit flag sets) is a bigint; every narrower field is a
 * number. Errno values are positive and negated on the wire.
 */
export * from './errno';
export * from './opcodes';
export * from './flags';
export * from './layout';
export * from './structs';
export * from './decode-error';
export * from './request';
export * from './extensions';
export * from './reply';
export * from './dirent';
