// Every struct layout, constant and errno of the codec against the table gcc
// computed from <linux/fuse.h> and <asm-generic/errno*.h> (abi.fixture.ts).
import * as fuse from '../../src/fuse';
import type { Struct } from '../../src/fuse';
import { ABI } from './abi.fixture';

function isStruct(v: unknown): v is Struct<object, never> {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'struct';
}

const layouts = new Map<string, Struct<object, never>>();
for (const v of Object.values(fuse)) if (isStruct(v)) layouts.set(v.name, v);

/** Flexible array members: not part of the layout, their offset is a constant. */
const FLEX: Record<string, Record<string, number>> = {
  fuse_dirent: { name: fuse.FUSE_NAME_OFFSET },
};

describe('struct layouts match gcc', () => {
  const names = Object.keys(ABI.structs);

  it('declares exactly the structs of the header', () => {
    expect([...layouts.keys()].sort()).toEqual([...names].sort());
  });

  it.each(names)('%s: size, alignment and every field offset', (name) => {
    const abi = ABI.structs[name];
    const layout = layouts.get(name);
    expect(layout).toBeDefined();
    if (!layout) return;
    expect(layout.size).toBe(abi.size);
    expect(layout.align).toBe(abi.align);
    const expected: Record<string, number> = { ...abi.fields };
    for (const [field, off] of Object.entries(FLEX[name] ?? {})) {
      expect(expected[field]).toBe(off);
      delete expected[field];
    }
    expect(layout.offsets).toEqual(expected);
    // Field order too (offsets are increasing in declaration order).
    expect(layout.fields.map((f) => f.name)).toEqual(Object.keys(expected));
  });

  it('has the sizes the protocol is known for', () => {
    const sizes = Object.fromEntries([...layouts].map(([n, l]) => [n, l.size]));
    expect(sizes).toMatchObject({
      fuse_in_header: 40,
      fuse_out_header: 16,
      fuse_attr: 88,
      fuse_entry_out: 128,
      fuse_attr_out: 104,
      fuse_init_in: 64,
      fuse_init_out: 64,
      fuse_setattr_in: 88,
      fuse_lk_in: 48,
      fuse_dirent: 24,
      fuse_direntplus: 152,
      fuse_kstatfs: 80,
      fuse_read_in: 40,
      fuse_write_in: 40,
      fuse_setxattr_in: 16,
      fuse_removemapping_in: 4,
    });
  });
});

describe('constants match the header', () => {
  // Everything the codec exports, enums flattened (FuseOpcode.FUSE_LOOKUP -> FUSE_LOOKUP).
  const ours: Record<string, unknown> = { ...fuse };
  for (const e of [fuse.FuseOpcode, fuse.FuseNotifyCode]) {
    for (const [k, v] of Object.entries(e)) if (typeof v === 'number') ours[k] = v;
  }
  /** Header constants deliberately not exported, with the reason. */
  const NOT_EXPORTED: Record<string, string> = {
    FUSE_DEV_IOC_MAGIC: '/dev/fuse ioctl, not part of the virtio-fs wire protocol',
  };
  const names = Object.keys(ABI.constants).filter((k) => !(k in NOT_EXPORTED));

  it.each(names)('%s', (name) => {
    let expected = BigInt(ABI.constants[name]);
    // C's (1 << 31) is an int and sign-extends when printed as 64 bits; the flag is bit 31.
    if (name === 'FUSE_INIT_RESERVED') expected = BigInt.asUintN(32, expected);
    const value = ours[name];
    expect(typeof value === 'number' || typeof value === 'bigint').toBe(true);
    expect(BigInt(value as number | bigint)).toBe(expected);
  });

  it('uses bigint exactly for 64-bit flag sets and ids', () => {
    expect(typeof fuse.FUSE_ASYNC_READ).toBe('bigint');
    expect(typeof fuse.FUSE_SECURITY_CTX).toBe('bigint');
    expect(typeof fuse.FUSE_SETUPMAPPING_FLAG_READ).toBe('bigint');
    expect(typeof fuse.FUSE_ROOT_ID).toBe('bigint');
    expect(typeof fuse.FOPEN_DIRECT_IO).toBe('number');
    expect(typeof fuse.FATTR_KILL_SUIDGID).toBe('number');
  });

  it('names opcodes like the kernel', () => {
    expect(fuse.opcodeName(1)).toBe('FUSE_LOOKUP');
    expect(fuse.opcodeName(4096)).toBe('CUSE_INIT');
    expect(fuse.opcodeName(52)).toBe('UNKNOWN(52)');
  });
});

describe('errno matches asm-generic', () => {
  it.each(Object.keys(ABI.errno))('%s', (name) => {
    expect(fuse.ERRNO[name]).toBe(ABI.errno[name]);
    expect((fuse as unknown as Record<string, number>)[name]).toBe(ABI.errno[name]);
  });

  it('maps names both ways', () => {
    expect(fuse.ENOENT).toBe(2);
    expect(fuse.ENOSYS).toBe(38);
    expect(fuse.EOPNOTSUPP).toBe(95);
    expect(fuse.errnoName(11)).toBe('EAGAIN');
    expect(fuse.errnoName(9999)).toBeUndefined();
    expect(fuse.errnoFromCode('ENOENT')).toBe(2);
    expect(fuse.errnoFromCode('ENOTSUP')).toBe(95);
    expect(fuse.errnoFromCode('ERR_INVALID_ARG_TYPE')).toBeUndefined();
    expect(fuse.errnoFromCode('toString')).toBeUndefined();
    expect(fuse.errnoFromCode(undefined)).toBeUndefined();
  });
});
