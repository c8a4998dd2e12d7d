export * from './virtio-fs/minimal-device';
export * from './fuse';
