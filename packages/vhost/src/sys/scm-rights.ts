// sendmsg/recvmsg with file descriptors in SCM_RIGHTS ancillary data. Node's net module drops
// ancillary data, so the msghdr, iovec and cmsg buffers are laid out by hand in one private page
// mapped through koffi (its numeric address is what the kernel structs point to).
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MSG_CMSG_CLOEXEC,
  MSG_CTRUNC,
  MSG_NOSIGNAL,
  Mapping,
  PROT_READ,
  PROT_WRITE,
  SCM_RIGHTS,
  SOL_SOCKET,
  SysError,
  mmap,
  recvmsg,
  sendmsg,
} from './libc';

/** The most fds one vhost-user message carries (VHOST_MEMORY_BASELINE_NREGIONS). */
export const MAX_FDS = 8;

const MSGHDR = 0; // struct msghdr: 56 bytes
const IOVEC = 64; // struct iovec: 16 bytes
const CMSG = 128; // struct cmsghdr (16) + MAX_FDS ints
const CMSG_SPACE = 16 + 8 * Math.ceil((MAX_FDS * 4) / 8);
const DATA = 256;
const PAGE = 65536;
export const MAX_SCM_DATA = PAGE - DATA;

export interface Received {
  /** Bytes read, 0 at end of stream. */
  length: number;
  fds: number[];
  /** Some fds were dropped by the kernel (the control buffer was too small). */
  truncatedFds: boolean;
}

/** One per thread: the page is reused for every call. */
export class ScmChannel {
  private readonly page: Mapping;

  constructor() {
    this.page = mmap(PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  }

  /** The data area: callers fill it before send, read it after receive. */
  get data(): Buffer {
    return this.page.buffer.subarray(DATA);
  }

  private layout(dataLength: number, controlLength: number): void {
    const b = this.page.buffer;
    const base = this.page.address;
    b.fill(0, 0, DATA);
    b.writeBigUInt64LE(base + BigInt(IOVEC), MSGHDR + 16); // msg_iov
    b.writeBigUInt64LE(1n, MSGHDR + 24); // msg_iovlen
    b.writeBigUInt64LE(controlLength ? base + BigInt(CMSG) : 0n, MSGHDR + 32); // msg_control
    b.writeBigUInt64LE(BigInt(controlLength), MSGHDR + 40); // msg_controllen
    b.writeBigUInt64LE(base + BigInt(DATA), IOVEC); // iov_base
    b.writeBigUInt64LE(BigInt(dataLength), IOVEC + 8); // iov_len
  }

  /** Sends `length` bytes from `data` with `fds`; returns bytes sent. */
  send(fd: number, length: number, fds: readonly number[]): number {
    if (fds.length > MAX_FDS) throw new Error(`at most ${MAX_FDS} fds per message`);
    if (length > MAX_SCM_DATA) throw new Error(`message too long: ${length}`);
    const controlLength = fds.length ? 16 + 8 * Math.ceil((fds.length * 4) / 8) : 0;
    this.layout(length, controlLength);
    if (fds.length) {
      const b = this.page.buffer;
      b.writeBigUInt64LE(BigInt(16 + 4 * fds.length), CMSG); // cmsg_len = CMSG_LEN
      b.writeInt32LE(SOL_SOCKET, CMSG + 8);
      b.writeInt32LE(SCM_RIGHTS, CMSG + 12);
      fds.forEach((f, i) => b.writeInt32LE(f, CMSG + 16 + 4 * i));
    }
    return sendmsg(fd, this.page.address, MSG_NOSIGNAL);
  }

  /** Receives up to `maxLength` bytes into `data` with any fds (marked close-on-exec). */
  receive(fd: number, maxLength: number, withFds: boolean): Received {
    if (maxLength > MAX_SCM_DATA) throw new Error(`receive too long: ${maxLength}`);
    this.layout(maxLength, withFds ? CMSG_SPACE : 0);
    const length = recvmsg(fd, this.page.address, MSG_CMSG_CLOEXEC);
    const b = this.page.buffer;
    const fds: number[] = [];
    const controlLength = Number(b.readBigUInt64LE(MSGHDR + 40));
    // Walk every cmsg: a peer could send several, each must be closed or taken.
    let off = 0;
    while (withFds && off + 16 <= controlLength) {
      const len = Number(b.readBigUInt64LE(CMSG + off));
      if (len < 16) break;
      if (b.readInt32LE(CMSG + off + 8) === SOL_SOCKET && b.readInt32LE(CMSG + off + 12) === SCM_RIGHTS) {
        for (let i = 0; 16 + 4 * (i + 1) <= len; i++) fds.push(b.readInt32LE(CMSG + off + 16 + 4 * i));
      }
      off += 8 * Math.ceil(len / 8);
    }
    const flags = b.readInt32LE(MSGHDR + 48);
    return { length, fds, truncatedFds: (flags & MSG_CTRUNC) !== 0 };
  }
}

export { SysError };
