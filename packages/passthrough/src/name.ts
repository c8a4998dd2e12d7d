// A name from the guest must be one path component inside its parent: no '/', no NUL, not empty;
// '.' and '..' are refused (the kernel resolves them itself unless export support is negotiated, which
// we do not offer) so that a lookup can never climb out of the shared directory.
import { EINVAL, ENOENT, FsError } from '@vfsd/core';

const SLASH = 0x2f;
const DOT = 0x2e;

export function checkName(name: Uint8Array): void {
  if (name.length === 0 || name.includes(SLASH) || name.includes(0)) throw new FsError(EINVAL, 'invalid name');
  if (name[0] === DOT && (name.length === 1 || (name.length === 2 && name[1] === DOT))) throw new FsError(ENOENT, `'.' / '..'`);
}
