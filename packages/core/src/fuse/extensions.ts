/**
 * Request extensions (7.38): a request's `ext` bytes are a sequence of
 * records, each starting with fuse_ext_header { size, type } where size covers
 * the whole record (a multiple of 8). Types 0..FUSE_MAX_NR_SECCTX are security
 * contexts: the header is then a fuse_secctx_header whose nr_secctx is the
 * type, followed by nr_secctx entries of
 *   fuse_secctx { size } | name '\0' | value[size] | zero pad to 8
 * (fs/fuse/dir.c get_security_context). Sent with CREATE, MKNOD, MKDIR,
 * SYMLINK and TMPFILE once FUSE_SECURITY_CTX is negotiated.
 * Type FUSE_EXT_GROUPS (32) is fuse_supp_groups { nr_groups; groups[] }: with FUSE_CREATE_SUPP_GROUP,
 * the kernel sends the parent directory's group when the caller holds it only as a supplementary
 * group (fs/fuse/dir.c get_create_supp_group), so the daemon may create there as the guest allowed.
 */
import { FuseDecodeError } from './decode-error';
import { EINVAL } from './errno';
import { viewOf } from './layout';
import { FUSE_MAX_NR_SECCTX } from './opcodes';
import { fuse_ext_header, fuse_secctx, recAlign } from './structs';

export interface FuseExtension {
  /** fuse_ext_header.type (for a security context: the number of contexts). */
  type: number;
  /** The record after its 8-byte header. */
  data: Buffer;
}

export interface SecurityContext {
  /** xattr name, e.g. "security.selinux" (without NUL). */
  name: Buffer;
  /** The context value, `fuse_secctx.size` bytes. */
  value: Buffer;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** fuse_ext_type FUSE_EXT_GROUPS. */
export const FUSE_EXT_GROUPS = 32;

/**
 * The supplementary group a create-type request carries (FUSE_EXT_GROUPS), or undefined. Throws
 * FuseDecodeError(EINVAL) for malformed extensions.
 */
export function createSuppGroup(ext: Uint8Array | undefined): number | undefined {
  if (!ext || ext.length === 0) return undefined;
  for (const e of decodeExtensions(ext)) {
    if (e.type !== FUSE_EXT_GROUPS) continue;
    if (e.data.length < 4) throw new FuseDecodeError(EINVAL, 'truncated fuse_supp_groups');
    const n = e.data.readUInt32LE(0);
    if (n === 0) return undefined;
    if (e.data.length < 4 + 4 * n) throw new FuseDecodeError(EINVAL, `fuse_supp_groups of ${n} groups in ${e.data.length} bytes`);
    return e.data.readUInt32LE(4);
  }
  return undefined;
}

/** Splits a request's extension bytes into records; throws FuseDecodeError(EINVAL) if malformed. */
export function decodeExtensions(ext: Uint8Array): FuseExtension[] {
  const buf = asBuffer(ext);
  const view = viewOf(buf);
  const out: FuseExtension[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (buf.length - pos < fuse_ext_header.size) throw new FuseDecodeError(EINVAL, 'truncated fuse_ext_header');
    const h = fuse_ext_header.read(view, buf.byteOffset + pos);
    if (h.size < fuse_ext_header.size || h.size % 8 !== 0 || h.size > buf.length - pos) {
      throw new FuseDecodeError(EINVAL, `bad extension size ${h.size}`);
    }
    out.push({ type: h.type, data: buf.subarray(pos + fuse_ext_header.size, pos + h.size) });
    pos += h.size;
  }
  return out;
}

/** The security contexts of a secctx extension (type <= FUSE_MAX_NR_SECCTX). */
export function decodeSecctx(ext: FuseExtension): SecurityContext[] {
  if (ext.type > FUSE_MAX_NR_SECCTX) throw new FuseDecodeError(EINVAL, `extension type ${ext.type} is not a secctx`);
  const buf = ext.data;
  const view = viewOf(buf);
  const out: SecurityContext[] = [];
  let pos = 0;
  for (let i = 0; i < ext.type; i++) {
    if (buf.length - pos < fuse_secctx.size) throw new FuseDecodeError(EINVAL, 'truncated fuse_secctx');
    const { size } = fuse_secctx.read(view, buf.byteOffset + pos);
    const nameAt = pos + fuse_secctx.size;
    const nul = buf.indexOf(0, nameAt);
    if (nul < 0) throw new FuseDecodeError(EINVAL, 'secctx name is not NUL-terminated');
    const valueEnd = nul + 1 + size;
    if (valueEnd > buf.length) throw new FuseDecodeError(EINVAL, 'truncated secctx value');
    out.push({ name: buf.subarray(nameAt, nul), value: buf.subarray(nul + 1, valueEnd) });
    pos += recAlign(valueEnd - pos);
  }
  return out;
}
