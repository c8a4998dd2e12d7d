// A name from the guest must be one path component inside its parent: no '/', no NUL, not empty.
// '.' and '..' are refused for every operation but LOOKUP (which EXPORT_SUPPORT asks of us, and where
// '..' of the root is answered with the root itself), so that no request can climb out of the shared
// directory.
import { EINVAL, ENOENT, FsError } from '@vfsd/core/abi';

const SLASH = 0x2f;
const DOT = 0x2e;

export function isDot(name: Uint8Array): boolean {
  return name.length === 1 && name[0] === DOT;
}

export function isDotDot(name: Uint8Array): boolean {
  return name.length === 2 && name[0] === DOT && name[1] === DOT;
}

function checkComponent(name: Uint8Array): void {
  if (name.length === 0 || name.includes(SLASH) || name.includes(0)) throw new FsError(EINVAL, 'invalid name');
}

/** Names that create, remove or rename entries: one component, not '.' or '..'. */
export function checkName(name: Uint8Array): void {
  checkComponent(name);
  if (isDot(name) || isDotDot(name)) throw new FsError(ENOENT, `'.' / '..'`);
}

/** LOOKUP: one component; '.' and '..' allowed (the caller maps '..' of the root to the root). */
export function checkLookupName(name: Uint8Array): void {
  checkComponent(name);
}
