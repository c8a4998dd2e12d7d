// The libc calls the command makes itself (Node has no prlimit, AF_UNIX datagrams, mount or
// pivot_root), through ffi-rs: one loader, opened once per thread that uses it.
import { DataType, load, open } from 'ffi-rs';

const LIB = 'vfsd-cli-libc';
let opened = false;

export interface LibcResult {
  value: number;
  errno: number;
  /** strerror of errno, for messages. */
  message: string;
}

export function libcCall(funcName: string, retType: DataType.I32 | DataType.I64, paramsType: DataType[], paramsValue: unknown[]): LibcResult {
  if (!opened) {
    open({ library: LIB, path: 'libc.so.6' });
    opened = true;
  }
  const r = load({ library: LIB, funcName, retType, paramsType, paramsValue, errno: true }) as unknown as {
    value: number | bigint;
    errnoCode: number;
    errnoMessage: string;
  };
  return { value: Number(r.value), errno: r.errnoCode, message: r.errnoMessage };
}
