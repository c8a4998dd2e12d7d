export * from './virtio-fs/minimal-device';
