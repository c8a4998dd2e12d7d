// Test tooling (`@vfsd/vhost/testing`): a simulated front-end (QEMU and the guest driver in
// TypeScript) and an echo device. Never imported by production code.
export * from './devices/echo-device';
export * from './frontend/guest-ram';
export * from './frontend/driver-queue';
export * from './frontend/simulated-frontend';
export * from './fuzz';
