// --security-label (FUSE_SECURITY_CTX, 7.36): with it negotiated the guest's kernel sends the
// security context its LSM gives a new inode (SELinux's or Smack's label) with CREATE, MKNOD, MKDIR,
// SYMLINK and TMPFILE, and the daemon gives the new host inode that label (the xattr the LSM keeps it
// in). Only the labels of those LSMs are taken: a context naming another xattr (security.capability
// would give a new host file capabilities) is refused before anything is created.
import { EINVAL, EOPNOTSUPP, FUSE_MAX_NR_SECCTX, FsError, decodeExtensions, decodeSecctx } from '@vfsd/core/abi';

/** The xattrs an LSM keeps a file's label in, as fs/fuse's security context names them. */
const LABEL_XATTRS = new Set(['security.selinux', 'security.SMACK64']);

export interface SecurityLabel {
  name: Buffer;
  value: Buffer;
}

/** The label a create-type request carries (none: no context, or an empty one). */
export function securityLabelOf(ext: Uint8Array | undefined): SecurityLabel | undefined {
  if (!ext || ext.length === 0) return undefined;
  let label: SecurityLabel | undefined;
  try {
    for (const e of decodeExtensions(ext)) {
      if (e.type > FUSE_MAX_NR_SECCTX) continue;
      for (const c of decodeSecctx(e)) {
        if (!LABEL_XATTRS.has(c.name.toString('latin1'))) throw new FsError(EOPNOTSUPP, `security context ${c.name.toString('latin1')} is not a label this daemon sets`);
        label ??= { name: Buffer.from(c.name), value: Buffer.from(c.value) };
      }
    }
  } catch (e) {
    if (e instanceof FsError) throw e;
    throw new FsError(EINVAL, (e as Error).message);
  }
  return label;
}
