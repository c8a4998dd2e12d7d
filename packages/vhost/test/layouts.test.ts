// Binary layouts against known bytes (vhost-user.rst and the virtio spec give these).
import * as fs from 'fs';
import {
  Request,
  decodeHeader,
  decodeMemoryTable,
  decodeSingleRegion,
  decodeVringAddr,
  encodeMemoryTable,
  encodeMessage,
  encodeVringAddr,
  encodeVringState,
  FLAG_REPLY,
  FLAG_VERSION,
} from '../src/protocol/messages';
import { availRingSize, descTableSize, usedRingSize, vringNeedEvent, isValidQueueSize } from '../src/virtqueue/ring-layout';
import { GuestMemory, MemoryRegion, WINDOW_SIZE } from '../src/memory/guest-memory';
import { MFD_CLOEXEC, memfdCreate } from '../src/sys/libc';

describe('vhost-user message layouts', () => {
  test('header: request, flags, size as three little-endian u32', () => {
    const m = encodeMessage(Request.GET_VRING_BASE, FLAG_VERSION | FLAG_REPLY, encodeVringState({ index: 1, num: 0x1234 }));
    expect(m.toString('hex')).toBe('0b000000' + '05000000' + '08000000' + '01000000' + '34120000');
    expect(decodeHeader(m)).toEqual({ request: 11, flags: 5, size: 8 });
  });

  test('vring address: index, flags, then desc, used, avail, log as u64', () => {
    const a = { index: 2, flags: 0, desc_user_addr: 0x1000n, used_user_addr: 0x3000n, avail_user_addr: 0x2000n, log_guest_addr: 0n };
    const b = encodeVringAddr(a);
    expect(b.length).toBe(40);
    expect(b.subarray(0, 8).toString('hex')).toBe('0200000000000000');
    expect(b.readBigUInt64LE(8)).toBe(0x1000n);
    expect(b.readBigUInt64LE(16)).toBe(0x3000n);
    expect(b.readBigUInt64LE(24)).toBe(0x2000n);
    expect(decodeVringAddr(b)).toEqual(a);
  });

  test('memory table: nregions, padding, 32-byte regions; inconsistent sizes are refused', () => {
    const r = { guest_phys_addr: 0x100000000n, memory_size: 0x40000000n, userspace_addr: 0x7f0000000000n, mmap_offset: 0x1000n };
    const b = encodeMemoryTable([r]);
    expect(b.length).toBe(40);
    expect(b.subarray(0, 8).toString('hex')).toBe('0100000000000000');
    expect(b.subarray(8, 16).toString('hex')).toBe('0000000001000000');
    expect(decodeMemoryTable(b)).toEqual([r]);
    expect(decodeMemoryTable(b.subarray(0, 30))).toBeNull();
    const nine = Buffer.alloc(8 + 9 * 32);
    nine.writeUInt32LE(9, 0);
    expect(decodeMemoryTable(nine)).toBeNull();
    const single = Buffer.concat([Buffer.alloc(8), b.subarray(8)]);
    expect(decodeSingleRegion(single)).toEqual(r);
  });
});

describe('split ring layout', () => {
  test('part sizes (virtio 1.2, 2.7)', () => {
    expect(descTableSize(256)).toBe(4096);
    expect(availRingSize(256)).toBe(6 + 512);
    expect(usedRingSize(256)).toBe(6 + 2048);
  });
  test('vring_need_event across the 16-bit wrap', () => {
    expect(vringNeedEvent(10, 11, 10)).toBe(true);
    expect(vringNeedEvent(10, 10, 9)).toBe(false);
    expect(vringNeedEvent(0xffff, 0, 0xfffe)).toBe(true);
    expect(vringNeedEvent(5, 0, 0xfff0)).toBe(false);
  });
  test('queue sizes are powers of two up to 32768', () => {
    expect([1, 4, 32768].every(isValidQueueSize)).toBe(true);
    expect([0, 3, 65536, 1.5].some(isValidQueueSize)).toBe(false);
  });
});

describe('guest memory', () => {
  test('regions larger than one window are mapped as several and read across the edge', () => {
    const fd = memfdCreate('test', MFD_CLOEXEC);
    const size = WINDOW_SIZE + (64 << 10);
    fs.ftruncateSync(fd, size); // sparse: costs no RAM
    const edge = WINDOW_SIZE - 4;
    fs.writeSync(fd, Buffer.from('abcdefgh'), 0, 8, edge);
    const region = new MemoryRegion({ guest_phys_addr: 0x1000_0000n, memory_size: BigInt(size), userspace_addr: 0x7000_0000_0000n, mmap_offset: 0n }, fd);
    fs.closeSync(fd);
    const mem = new GuestMemory([region]);
    const views: Buffer[] = [];
    expect(mem.gpaViews(0x1000_0000 + edge, 8, views)).toBe(true);
    expect(views.map((v) => v.length)).toEqual([4, 4]);
    expect(mem.read(0x1000_0000 + edge, 8).toString()).toBe('abcdefgh');
    mem.write(0x1000_0000 + edge, Buffer.from('ABCDEFGH'));
    expect(Buffer.concat(views).toString()).toBe('ABCDEFGH');
    expect(mem.gpaView(0x1000_0000 + edge, 8)).toBeNull(); // not contiguous in one view
    expect(mem.gpaViews(0x1000_0000 + size - 4, 8, [])).toBe(false);
    expect(mem.gpaViews(0x0fff_fff0, 8, [])).toBe(false);
    expect(mem.uvaView(0x7000_0000_0000 + 16, 16)).not.toBeNull();
    region.unmap();
  });
});
