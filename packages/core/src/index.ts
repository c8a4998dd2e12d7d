export * from './fuse';
export * from './filesystem';
export * from './virtio-fs/minimal-device';
