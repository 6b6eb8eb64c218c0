/**
 * A synchronous netlink socket (`AF_NETLINK`: socket/bind/sendto/recv through koffi) with
 * request/ack and dump helpers, for rtnetlink (`netlink.ts`) and nf_tables (`nftables.ts`).
 *
 * Synchronous and allocating little, so a forked container init can use it. Requests carry
 * `NLM_F_ACK`; an `NLMSG_ERROR` reply with a negative code becomes a {@link KernelError} whose
 * syscall names the request (e.g. `RTM_NEWLINK`).
 *
 * @module
 */
import { libc, check, fail } from './libc.js';
import { cleanupAfter } from '../errors.js';
import { close } from './fd.js';
import { NL, encodeMessage, parseMessages, type NlReply } from './netlink-attrs.js';

const _socket = libc.func('int socket(int domain, int type, int protocol)');
const _bind = libc.func('int bind(int fd, const void *addr, uint32_t len)');
const _sendto = libc.func(
  'long sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t alen)',
);
const _recv = libc.func('long recv(int fd, _Out_ void *buf, size_t len, int flags)');

const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;

/** Receive buffer: large enough for a dump chunk (the kernel fills at most ~32 KiB per datagram). */
const RECV_SIZE = 64 * 1024;

const MESSAGE_NAMES: Record<number, string> = {
  16: 'RTM_NEWLINK',
  17: 'RTM_DELLINK',
  18: 'RTM_GETLINK',
  19: 'RTM_SETLINK',
  20: 'RTM_NEWADDR',
  21: 'RTM_DELADDR',
  22: 'RTM_GETADDR',
  24: 'RTM_NEWROUTE',
  25: 'RTM_DELROUTE',
  26: 'RTM_GETROUTE',
};

/**
 * A netlink socket of one protocol, with request/ack and dump helpers.
 *
 * @example
 * ```ts
 * const s = NetlinkSocket.open(NL.NETLINK_ROUTE);
 * try { s.request(RTM.GETLINK, NL.F_DUMP, body); } finally { s.close(); }
 * ```
 */
export class NetlinkSocket {
  /** The socket's file descriptor. */
  readonly fd: number;
  /** Whether {@link NetlinkSocket.close} closes the fd (false for sockets wrapped with {@link NetlinkSocket.fromFd}). */
  readonly owned: boolean;
  #seq: number;
  #buf: Buffer | undefined;

  private constructor(fd: number, owned: boolean) {
    this.fd = fd;
    this.owned = owned;
    this.#seq = (Date.now() & 0xffff) << 8;
  }

  /** `socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol)` + `bind` to an automatic port id. */
  static open(protocol: number): NetlinkSocket {
    const fd = check(
      'socket',
      () => _socket(NL.AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol),
      `AF_NETLINK, ${protocol}`,
    );
    try {
      const sa = Buffer.alloc(12);
      sa.writeUInt16LE(NL.AF_NETLINK, 0);
      check('bind', () => _bind(fd, sa, sa.length), 'AF_NETLINK');
    } catch (e) {
      throw cleanupAfter(e, () => close(fd));
    }
    return new NetlinkSocket(fd, true);
  }

  /** Wraps an already open and bound netlink socket (e.g. one inherited by a forked init); not closed by {@link NetlinkSocket.close}. */
  static fromFd(fd: number): NetlinkSocket {
    return new NetlinkSocket(fd, false);
  }

  /** The next sequence number. */
  nextSeq(): number {
    this.#seq = (this.#seq + 1) >>> 0;
    return this.#seq;
  }

  /** Sends `data` (one or several encoded messages) to the kernel. */
  send(data: Buffer, what: string): void {
    const sa = Buffer.alloc(12);
    sa.writeUInt16LE(NL.AF_NETLINK, 0);
    check('sendto', () => Number(_sendto(this.fd, data, data.length, 0, sa, sa.length)), what);
  }

  /** Receives one datagram and splits it into messages. */
  receive(what: string): NlReply[] {
    this.#buf ??= Buffer.alloc(RECV_SIZE);
    const buf = this.#buf;
    const n = check('recv', () => Number(_recv(this.fd, buf, buf.length, 0)), what);
    // Copy: the receive buffer is reused by the next call.
    return parseMessages(Buffer.from(buf.subarray(0, n)));
  }

  /**
   * Sends one request with `NLM_F_REQUEST | NLM_F_ACK | flags` and waits for its ack; with
   * `NLM_F_DUMP` in `flags`, collects every reply until `NLMSG_DONE` instead.
   *
   * @returns the data messages received (empty for a plain request).
   * @throws KernelError when the kernel answers with an error.
   */
  request(
    type: number,
    flags: number,
    body: Buffer,
    name = MESSAGE_NAMES[type] ?? `nlmsg ${type}`,
    detail?: string,
  ): NlReply[] {
    const seq = this.nextSeq();
    const dump = (flags & NL.F_DUMP) === NL.F_DUMP;
    this.send(encodeMessage({ type, flags: NL.F_REQUEST | NL.F_ACK | flags, seq, body }), name);
    const out: NlReply[] = [];
    for (;;) {
      for (const m of this.receive(name)) {
        if (m.seq !== seq) continue;
        if (m.type === NL.MSG_ERROR) {
          const code = m.body.readInt32LE(0);
          if (code < 0) fail(name, -code, detail);
          if (!dump) return out;
          continue;
        }
        if (m.type === NL.MSG_DONE) return out;
        if (m.type === NL.MSG_NOOP) continue;
        out.push(m);
      }
    }
  }

  /** Closes the socket if this object owns it. */
  close(): void {
    if (this.owned) close(this.fd);
  }
}
