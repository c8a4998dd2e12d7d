import { opcodeName } from './opcodes';

/**
 * What was wrong, for counting: fewer bytes than fuse_in_header, a header that contradicts the bytes
 * (len, total_extlen), an opcode we do not know, or the opcode's arguments.
 */
export type DecodeFailure = 'short header' | 'bad header' | 'unknown opcode' | 'bad arguments';

/**
 * A request that cannot be decoded. It carries what the server needs to
 * answer it: the errno (positive, e.g. EINVAL) and the request's unique id.
 *
 * - `unique === undefined`: not even the header's unique could be read; there
 *   is nothing to reply to (give the chain back with no reply).
 * - `noReply`: the opcode never gets a reply (FORGET, BATCH_FORGET,
 *   NOTIFY_REPLY, INTERRUPT); log and drop.
 * - otherwise reply with encodeErrorReply(buf, off, unique, errno).
 */
export class FuseDecodeError extends Error {
  override readonly name = 'FuseDecodeError';
  readonly errno: number;
  readonly unique: bigint | undefined;
  readonly opcode: number | undefined;
  readonly noReply: boolean;
  readonly kind: DecodeFailure;

  constructor(errno: number, detail: string, unique?: bigint, opcode?: number, noReply = false, kind: DecodeFailure = 'bad arguments') {
    super(opcode === undefined ? detail : `${opcodeName(opcode)}: ${detail}`);
    this.errno = errno;
    this.unique = unique;
    this.opcode = opcode;
    this.noReply = noReply;
    this.kind = kind;
  }
}
