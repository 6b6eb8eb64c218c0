/**
 * Netlink message layout: `nlmsghdr`, netlink attributes (NLA / rtattr), and the fixed headers
 * of rtnetlink (`ifinfomsg`, `ifaddrmsg`, `rtmsg`), built and parsed with Buffers.
 *
 * Pure functions over bytes, with no system calls, so they can be checked against known byte
 * layouts. Constants come from `<linux/netlink.h>`, `<linux/rtnetlink.h>`, `<linux/if_link.h>`,
 * `<linux/if_addr.h>` and `<linux/veth.h>`; multi-byte fields are in host (little-endian) order.
 *
 * @module
 */
import { BerthError } from '../errors.js';

/** `<linux/netlink.h>`: protocol numbers, message flags and control message types. */
export const NL = {
  /** `AF_NETLINK` / `PF_NETLINK` (`<sys/socket.h>`). */
  AF_NETLINK: 16,
  /** `NETLINK_ROUTE`: rtnetlink. */
  NETLINK_ROUTE: 0,
  /** `NETLINK_NETFILTER`: nfnetlink (nf_tables). */
  NETLINK_NETFILTER: 12,
  /** `NLM_F_REQUEST`. */
  F_REQUEST: 0x1,
  /** `NLM_F_MULTI`. */
  F_MULTI: 0x2,
  /** `NLM_F_ACK`. */
  F_ACK: 0x4,
  /** `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`). */
  F_DUMP: 0x300,
  /** `NLM_F_REPLACE`. */
  F_REPLACE: 0x100,
  /** `NLM_F_EXCL`. */
  F_EXCL: 0x200,
  /** `NLM_F_CREATE`. */
  F_CREATE: 0x400,
  /** `NLM_F_APPEND`. */
  F_APPEND: 0x800,
  /** `NLMSG_NOOP`. */
  MSG_NOOP: 1,
  /** `NLMSG_ERROR`. */
  MSG_ERROR: 2,
  /** `NLMSG_DONE`. */
  MSG_DONE: 3,
  /** `NLA_F_NESTED`. */
  NLA_F_NESTED: 0x8000,
} as const;

/** `<linux/rtnetlink.h>`: rtnetlink message types, route tables, protocols, scopes. */
export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  SETLINK: 19,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
  /** `RT_TABLE_MAIN`. */
  TABLE_MAIN: 254,
  /** `RTPROT_BOOT`: routes added by a tool, as `ip route add` does. */
  PROT_BOOT: 3,
  /** `RTPROT_KERNEL`. */
  PROT_KERNEL: 2,
  /** `RT_SCOPE_UNIVERSE`. */
  SCOPE_UNIVERSE: 0,
  /** `RT_SCOPE_LINK`. */
  SCOPE_LINK: 253,
  /** `RT_SCOPE_HOST`. */
  SCOPE_HOST: 254,
  /** `RTN_UNICAST`. */
  TYPE_UNICAST: 1,
} as const;

/** `<linux/if_link.h>`: link attributes (`IFLA_*`) and link-info attributes. */
export const IFLA = {
  ADDRESS: 1,
  BROADCAST: 2,
  IFNAME: 3,
  MTU: 4,
  LINK: 5,
  MASTER: 10,
  OPERSTATE: 16,
  LINKINFO: 18,
  NET_NS_PID: 19,
  NET_NS_FD: 28,
  /** `IFLA_INFO_KIND` (inside `IFLA_LINKINFO`). */
  INFO_KIND: 1,
  /** `IFLA_INFO_DATA` (inside `IFLA_LINKINFO`). */
  INFO_DATA: 2,
  /** `VETH_INFO_PEER` (`<linux/veth.h>`, inside `IFLA_INFO_DATA`): an `ifinfomsg` then attributes. */
  VETH_INFO_PEER: 1,
} as const;

/** `<linux/if_addr.h>`: address attributes. */
export const IFA = {
  ADDRESS: 1,
  LOCAL: 2,
  LABEL: 3,
  BROADCAST: 4,
} as const;

/** `<linux/rtnetlink.h>`: route attributes. */
export const RTA = {
  DST: 1,
  SRC: 2,
  IIF: 3,
  OIF: 4,
  GATEWAY: 5,
  PRIORITY: 6,
  PREFSRC: 7,
  TABLE: 15,
} as const;

/** `IFF_UP` (`<net/if.h>`). */
export const IFF_UP = 0x1;

/** Size of `struct nlmsghdr`. */
export const NLMSG_HDRLEN = 16;

/** Rounds `n` up to the netlink alignment of 4 bytes. */
export function align4(n: number): number {
  return (n + 3) & ~3;
}

/** One netlink attribute before encoding: a type and a payload (raw bytes, or nested attributes). */
export interface Attr {
  /** The attribute type (without `NLA_F_NESTED`, which {@link nested} adds). */
  type: number;
  /** Raw payload bytes. */
  data: Buffer;
}

/** An attribute with raw bytes. */
export function attr(type: number, data: Buffer): Attr {
  return { type, data };
}

/** A NUL-terminated string attribute. */
export function attrString(type: number, value: string): Attr {
  return { type, data: Buffer.from(`${value}\0`, 'latin1') };
}

/** A host-order u32 attribute. */
export function attrU32(type: number, value: number): Attr {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0);
  return { type, data: b };
}

/** A host-order s32 attribute (e.g. a file descriptor). */
export function attrS32(type: number, value: number): Attr {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value);
  return { type, data: b };
}

/** A big-endian u32 attribute (nf_tables numbers are in network order). */
export function attrU32BE(type: number, value: number): Attr {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return { type, data: b };
}

/** A nested attribute holding `children`; `flag` sets `NLA_F_NESTED` (nf_tables wants it). */
export function nested(type: number, children: Attr[], flag = false): Attr {
  return { type: flag ? type | NL.NLA_F_NESTED : type, data: encodeAttrs(children) };
}

/** Encodes attributes: each is `u16 len, u16 type, payload`, padded to 4 bytes. */
export function encodeAttrs(attrs: Attr[]): Buffer {
  let size = 0;
  for (const a of attrs) size += align4(4 + a.data.length);
  const out = Buffer.alloc(size);
  let off = 0;
  for (const a of attrs) {
    out.writeUInt16LE(4 + a.data.length, off);
    out.writeUInt16LE(a.type, off + 2);
    a.data.copy(out, off + 4);
    off += align4(4 + a.data.length);
  }
  return out;
}

/** Decodes the attributes in `buf` into a map from type (nesting flag cleared) to payload; later duplicates win. */
export function parseAttrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) break;
    out.set(buf.readUInt16LE(off + 2) & 0x3fff, buf.subarray(off + 4, off + len));
    off += align4(len);
  }
  return out;
}

/** A NUL-terminated string payload as text. */
export function attrText(data: Buffer | undefined): string | undefined {
  if (data === undefined) return undefined;
  const nul = data.indexOf(0);
  return data.toString('latin1', 0, nul < 0 ? data.length : nul);
}

/** A netlink message header plus body, before encoding. */
export interface NlMessage {
  /** `nlmsg_type`. */
  type: number;
  /** `nlmsg_flags`. */
  flags: number;
  /** `nlmsg_seq`. */
  seq: number;
  /** The bytes after the header (fixed header, then attributes). */
  body: Buffer;
}

/** Encodes one message: `nlmsghdr { u32 len, u16 type, u16 flags, u32 seq, u32 pid = 0 }` + body, padded. */
export function encodeMessage(m: NlMessage): Buffer {
  const len = NLMSG_HDRLEN + m.body.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt32LE(len, 0);
  out.writeUInt16LE(m.type, 4);
  out.writeUInt16LE(m.flags, 6);
  out.writeUInt32LE(m.seq >>> 0, 8);
  out.writeUInt32LE(0, 12);
  m.body.copy(out, NLMSG_HDRLEN);
  return out;
}

/** One decoded message: header fields and the body after the header. */
export interface NlReply {
  /** `nlmsg_type`. */
  type: number;
  /** `nlmsg_flags`. */
  flags: number;
  /** `nlmsg_seq`. */
  seq: number;
  /** The bytes after the header. */
  body: Buffer;
}

/** Splits a datagram received from a netlink socket into messages. */
export function parseMessages(buf: Buffer): NlReply[] {
  const out: NlReply[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) break;
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      body: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

/** `struct ifinfomsg` fields. */
export interface IfInfoMsg {
  /** `ifi_family` (AF_UNSPEC = 0 for links). */
  family?: number;
  /** `ifi_type` (ARPHRD_*). */
  type?: number;
  /** `ifi_index` (0 = by name / new). */
  index?: number;
  /** `ifi_flags`. */
  flags?: number;
  /** `ifi_change`: which flags to change. */
  change?: number;
}

/** Encodes `struct ifinfomsg { u8 family, u8 pad, u16 type, s32 index, u32 flags, u32 change }` (16 bytes). */
export function encodeIfInfo(m: IfInfoMsg): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(m.family ?? 0, 0);
  b.writeUInt16LE(m.type ?? 0, 2);
  b.writeInt32LE(m.index ?? 0, 4);
  b.writeUInt32LE((m.flags ?? 0) >>> 0, 8);
  b.writeUInt32LE((m.change ?? 0) >>> 0, 12);
  return b;
}

/** Decodes `struct ifinfomsg`. */
export function parseIfInfo(b: Buffer): Required<IfInfoMsg> {
  return {
    family: b.readUInt8(0),
    type: b.readUInt16LE(2),
    index: b.readInt32LE(4),
    flags: b.readUInt32LE(8),
    change: b.readUInt32LE(12),
  };
}

/** `struct ifaddrmsg` fields. */
export interface IfAddrMsg {
  /** `ifa_family` (AF_INET = 2). */
  family: number;
  /** `ifa_prefixlen`. */
  prefixlen: number;
  /** `ifa_flags`. */
  flags?: number;
  /** `ifa_scope`. */
  scope?: number;
  /** `ifa_index`. */
  index: number;
}

/** Encodes `struct ifaddrmsg { u8 family, u8 prefixlen, u8 flags, u8 scope, u32 index }` (8 bytes). */
export function encodeIfAddr(m: IfAddrMsg): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(m.family, 0);
  b.writeUInt8(m.prefixlen, 1);
  b.writeUInt8(m.flags ?? 0, 2);
  b.writeUInt8(m.scope ?? 0, 3);
  b.writeUInt32LE(m.index, 4);
  return b;
}

/** Decodes `struct ifaddrmsg`. */
export function parseIfAddr(b: Buffer): Required<IfAddrMsg> {
  return {
    family: b.readUInt8(0),
    prefixlen: b.readUInt8(1),
    flags: b.readUInt8(2),
    scope: b.readUInt8(3),
    index: b.readUInt32LE(4),
  };
}

/** `struct rtmsg` fields. */
export interface RtMsg {
  /** `rtm_family`. */
  family: number;
  /** `rtm_dst_len`. */
  dstLen?: number;
  /** `rtm_src_len`. */
  srcLen?: number;
  /** `rtm_tos`. */
  tos?: number;
  /** `rtm_table`. */
  table?: number;
  /** `rtm_protocol`. */
  protocol?: number;
  /** `rtm_scope`. */
  scope?: number;
  /** `rtm_type`. */
  type?: number;
  /** `rtm_flags`. */
  flags?: number;
}

/** Encodes `struct rtmsg` (8 single bytes, then `u32 flags`: 12 bytes). */
export function encodeRtMsg(m: RtMsg): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(m.family, 0);
  b.writeUInt8(m.dstLen ?? 0, 1);
  b.writeUInt8(m.srcLen ?? 0, 2);
  b.writeUInt8(m.tos ?? 0, 3);
  b.writeUInt8(m.table ?? 0, 4);
  b.writeUInt8(m.protocol ?? 0, 5);
  b.writeUInt8(m.scope ?? 0, 6);
  b.writeUInt8(m.type ?? 0, 7);
  b.writeUInt32LE((m.flags ?? 0) >>> 0, 8);
  return b;
}

/** Decodes `struct rtmsg`. */
export function parseRtMsg(b: Buffer): Required<RtMsg> {
  return {
    family: b.readUInt8(0),
    dstLen: b.readUInt8(1),
    srcLen: b.readUInt8(2),
    tos: b.readUInt8(3),
    table: b.readUInt8(4),
    protocol: b.readUInt8(5),
    scope: b.readUInt8(6),
    type: b.readUInt8(7),
    flags: b.readUInt32LE(8),
  };
}

/** Parses dotted IPv4 text into 4 bytes; throws `INVALID_ARGUMENT` on malformed input. */
export function ipv4Bytes(ip: string): Buffer {
  const parts = ip.split('.');
  if (parts.length !== 4) throw new BerthError('INVALID_ARGUMENT', `not an IPv4 address: ${ip}`);
  const b = Buffer.alloc(4);
  parts.forEach((p, i) => {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) throw new BerthError('INVALID_ARGUMENT', `not an IPv4 address: ${ip}`);
    b[i] = Number(p);
  });
  return b;
}

/** Formats 4 bytes as dotted IPv4 text. */
export function ipv4Text(b: Buffer): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** Parses `aa:bb:cc:dd:ee:ff` into 6 bytes; throws `INVALID_ARGUMENT` on malformed input. */
export function macBytes(mac: string): Buffer {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(mac))
    throw new BerthError('INVALID_ARGUMENT', `not a MAC address: ${mac}`);
  return Buffer.from(mac.replace(/:/g, ''), 'hex');
}

/** Formats bytes as `aa:bb:…` (lower case). */
export function macText(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
