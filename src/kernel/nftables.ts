/**
 * nf_tables over `NETLINK_NETFILTER`: message and expression encoders, and a synchronous
 * transaction (`NFNL_MSG_BATCH_BEGIN` … `NFNL_MSG_BATCH_END`) that the kernel applies atomically.
 *
 * Only what berth needs is here: tables, base chains, and rules made of `meta`, `payload`,
 * `bitwise`, `cmp`, `fib`, `immediate`, `nat` and `masq` expressions. Constants come from
 * `<linux/netfilter/nfnetlink.h>`, `<linux/netfilter/nf_tables.h>` and `<linux/netfilter.h>`;
 * nf_tables numbers are big-endian on the wire.
 *
 * @module
 */
import { fail } from './libc.js';
import { NetlinkSocket } from './netlink-socket.js';
import {
  NL,
  attr,
  attrString,
  attrU32BE,
  encodeMessage,
  encodeAttrs,
  ipv4Bytes,
  nested,
  type Attr,
} from './netlink-attrs.js';

/** nf_tables constants (`<linux/netfilter/nf_tables.h>` and friends). */
export const NFT = {
  /** `NFNL_SUBSYS_NFTABLES`. */
  SUBSYS: 10,
  /** `NFNL_MSG_BATCH_BEGIN`. */
  BATCH_BEGIN: 0x10,
  /** `NFNL_MSG_BATCH_END`. */
  BATCH_END: 0x11,
  MSG_NEWTABLE: 0,
  MSG_DELTABLE: 2,
  MSG_NEWCHAIN: 3,
  MSG_NEWRULE: 6,
  MSG_GETGEN: 16,
  /** `NFPROTO_IPV4`. */
  FAMILY_IPV4: 2,
  /** `NFPROTO_INET`. */
  FAMILY_INET: 1,
  /** `NF_INET_*` hooks. */
  HOOK_PREROUTING: 0,
  HOOK_INPUT: 1,
  HOOK_FORWARD: 2,
  HOOK_OUTPUT: 3,
  HOOK_POSTROUTING: 4,
  /** `NF_DROP`, `NF_ACCEPT`. */
  DROP: 0,
  ACCEPT: 1,
  /** Registers: the verdict register and the first two 16-byte data registers. */
  REG_VERDICT: 0,
  REG_1: 1,
  REG_2: 2,
  /** `NFT_CMP_EQ`, `NFT_CMP_NEQ`. */
  CMP_EQ: 0,
  CMP_NEQ: 1,
  /** `NFT_PAYLOAD_NETWORK_HEADER`, `NFT_PAYLOAD_TRANSPORT_HEADER`. */
  BASE_NETWORK: 1,
  BASE_TRANSPORT: 2,
  /** `NFT_META_IIFNAME`, `NFT_META_OIFNAME`, `NFT_META_L4PROTO`. */
  META_IIFNAME: 6,
  META_OIFNAME: 7,
  META_L4PROTO: 16,
  /** `NFT_NAT_DNAT`. */
  NAT_DNAT: 1,
  /** `NFT_FIB_RESULT_ADDRTYPE`, `NFTA_FIB_F_DADDR`, `RTN_LOCAL`. */
  FIB_RESULT_ADDRTYPE: 3,
  FIB_F_DADDR: 2,
  RTN_LOCAL: 2,
} as const;

/** One nf_tables expression: its name and its attributes. */
export interface NftExpr {
  /** The expression type, e.g. `cmp`. */
  name: string;
  /** Its `NFTA_<NAME>_*` attributes. */
  attrs: Attr[];
}

const data = (type: number, value: Buffer): Attr => nested(type, [attr(1 /* NFTA_DATA_VALUE */, value)], true);

/** Expression constructors (each mirrors one `nft` keyword). */
export const expr = {
  /** `meta <key>` into `reg`. */
  meta(key: number, reg: number = NFT.REG_1): NftExpr {
    return { name: 'meta', attrs: [attrU32BE(2 /* KEY */, key), attrU32BE(1 /* DREG */, reg)] };
  },
  /** Load `len` bytes at `offset` of header `base` into `reg`. */
  payload(base: number, offset: number, len: number, reg: number = NFT.REG_1): NftExpr {
    return {
      name: 'payload',
      attrs: [
        attrU32BE(1 /* DREG */, reg),
        attrU32BE(2 /* BASE */, base),
        attrU32BE(3 /* OFFSET */, offset),
        attrU32BE(4 /* LEN */, len),
      ],
    };
  },
  /** `reg = (reg & mask) ^ 0`. */
  bitwise(mask: Buffer, reg: number = NFT.REG_1): NftExpr {
    return {
      name: 'bitwise',
      attrs: [
        attrU32BE(1 /* SREG */, reg),
        attrU32BE(2 /* DREG */, reg),
        attrU32BE(3 /* LEN */, mask.length),
        data(4 /* MASK */, mask),
        data(5 /* XOR */, Buffer.alloc(mask.length)),
      ],
    };
  },
  /** Compare `reg` with `value` (`op` = {@link NFT.CMP_EQ} or {@link NFT.CMP_NEQ}). */
  cmp(op: number, value: Buffer, reg: number = NFT.REG_1): NftExpr {
    return { name: 'cmp', attrs: [attrU32BE(1 /* SREG */, reg), attrU32BE(2 /* OP */, op), data(3 /* DATA */, value)] };
  },
  /** `fib daddr type` into `reg` (a host-order u32 route type). */
  fibDaddrType(reg: number = NFT.REG_1): NftExpr {
    return {
      name: 'fib',
      attrs: [
        attrU32BE(1 /* DREG */, reg),
        attrU32BE(2 /* RESULT */, NFT.FIB_RESULT_ADDRTYPE),
        attrU32BE(3 /* FLAGS */, NFT.FIB_F_DADDR),
      ],
    };
  },
  /** Load a constant into `reg`. */
  immediate(value: Buffer, reg: number): NftExpr {
    return { name: 'immediate', attrs: [attrU32BE(1 /* DREG */, reg), data(2 /* DATA */, value)] };
  },
  /** A verdict: `accept` or `drop`. */
  verdict(code: number): NftExpr {
    const v = nested(2 /* NFTA_DATA_VERDICT */, [attrU32BE(1 /* NFTA_VERDICT_CODE */, code)], true);
    return { name: 'immediate', attrs: [attrU32BE(1 /* DREG */, NFT.REG_VERDICT), nested(2 /* DATA */, [v], true)] };
  },
  /** `masquerade`. */
  masq(): NftExpr {
    return { name: 'masq', attrs: [] };
  },
  /** `dnat to` the IPv4 address in `addrReg` and the port in `portReg`. */
  dnat(addrReg: number, portReg: number): NftExpr {
    return {
      name: 'nat',
      attrs: [
        attrU32BE(1 /* TYPE */, NFT.NAT_DNAT),
        attrU32BE(2 /* FAMILY */, NFT.FAMILY_IPV4),
        attrU32BE(3 /* REG_ADDR_MIN */, addrReg),
        attrU32BE(5 /* REG_PROTO_MIN */, portReg),
      ],
    };
  },
};

/** An interface name as `meta iifname/oifname` compares it: the name and its NUL (exact match). */
export function ifnameValue(name: string): Buffer {
  return Buffer.from(`${name}\0`, 'latin1');
}

/** A big-endian 16-bit port. */
export function portValue(port: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(port);
  return b;
}

/** Rule fragments for common matches (each a list of expressions). */
export const match = {
  /** `ip saddr <base>/<prefix>` (or `ip daddr` with `field` = `'daddr'`). */
  ipNet(field: 'saddr' | 'daddr', base: string, prefix: number): NftExpr[] {
    const off = field === 'saddr' ? 12 : 16;
    const mask = Buffer.alloc(4);
    mask.writeUInt32BE(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
    const out = [expr.payload(NFT.BASE_NETWORK, off, 4)];
    if (prefix < 32) out.push(expr.bitwise(mask));
    out.push(expr.cmp(NFT.CMP_EQ, ipv4Bytes(base)));
    return out;
  },
  /** `oifname [!=] <name>` / `iifname [!=] <name>`. */
  ifname(dir: 'iif' | 'oif', name: string, negate = false): NftExpr[] {
    return [
      expr.meta(dir === 'iif' ? NFT.META_IIFNAME : NFT.META_OIFNAME),
      expr.cmp(negate ? NFT.CMP_NEQ : NFT.CMP_EQ, ifnameValue(name)),
    ];
  },
  /** `meta l4proto <tcp|udp> th dport <port>`. */
  dport(protocol: 'tcp' | 'udp', port: number): NftExpr[] {
    return [
      expr.meta(NFT.META_L4PROTO),
      expr.cmp(NFT.CMP_EQ, Buffer.from([protocol === 'tcp' ? 6 : 17])),
      expr.payload(NFT.BASE_TRANSPORT, 2, 2),
      expr.cmp(NFT.CMP_EQ, portValue(port)),
    ];
  },
  /** `fib daddr type local`. */
  daddrLocal(): NftExpr[] {
    const v = Buffer.alloc(4);
    v.writeUInt32LE(NFT.RTN_LOCAL);
    return [expr.fibDaddrType(), expr.cmp(NFT.CMP_EQ, v)];
  },
};

/** A base chain to create. */
export interface NftChain {
  /** The chain's name. */
  name: string;
  /** `nat` or `filter`. */
  type: 'nat' | 'filter';
  /** One of the `NFT.HOOK_*` numbers. */
  hook: number;
  /** The hook priority (e.g. -100 for dstnat, 100 for srcnat). */
  priority: number;
}

/** A rule to append to a chain. */
export interface NftRule {
  /** The chain's name. */
  chain: string;
  /** Its expressions, in order. */
  exprs: NftExpr[];
}

/** A whole table: what {@link replaceTable} installs. */
export interface NftTable {
  /** `NFT.FAMILY_IPV4` or `NFT.FAMILY_INET`. */
  family: number;
  /** The table's name. */
  name: string;
  /** Its base chains. */
  chains: NftChain[];
  /** Its rules. */
  rules: NftRule[];
}

/** An nf_tables message in a batch, before encoding. */
interface BatchItem {
  msg: number;
  flags: number;
  family: number;
  attrs: Attr[];
}

function nfgen(family: number, resId = 0): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt8(family, 0);
  b.writeUInt8(0, 1);
  b.writeUInt16BE(resId, 2);
  return b;
}

function tableItems(t: Pick<NftTable, 'family' | 'name'>, op: 'new' | 'del'): BatchItem {
  return op === 'new'
    ? { msg: NFT.MSG_NEWTABLE, flags: NL.F_CREATE, family: t.family, attrs: [attrString(1 /* NAME */, t.name)] }
    : { msg: NFT.MSG_DELTABLE, flags: 0, family: t.family, attrs: [attrString(1 /* NAME */, t.name)] };
}

function chainItem(t: NftTable, c: NftChain): BatchItem {
  const hook = nested(
    4 /* NFTA_CHAIN_HOOK */,
    [attrU32BE(1 /* HOOKNUM */, c.hook), attrU32BE(2 /* PRIORITY */, c.priority >>> 0)],
    true,
  );
  return {
    msg: NFT.MSG_NEWCHAIN,
    flags: NL.F_CREATE,
    family: t.family,
    attrs: [
      attrString(1 /* TABLE */, t.name),
      attrString(3 /* NAME */, c.name),
      hook,
      attrString(7 /* TYPE */, c.type),
    ],
  };
}

function ruleItem(t: NftTable, r: NftRule): BatchItem {
  const list = r.exprs.map((e) =>
    nested(
      1 /* NFTA_LIST_ELEM */,
      [
        attrString(1 /* NFTA_EXPR_NAME */, e.name),
        ...(e.attrs.length ? [nested(2 /* NFTA_EXPR_DATA */, e.attrs, true)] : []),
      ],
      true,
    ),
  );
  return {
    msg: NFT.MSG_NEWRULE,
    flags: NL.F_CREATE | NL.F_APPEND,
    family: t.family,
    attrs: [
      attrString(1 /* TABLE */, t.name),
      attrString(2 /* CHAIN */, r.chain),
      nested(4 /* EXPRESSIONS */, list, true),
    ],
  };
}

/**
 * Encodes a transaction: batch begin, the messages (each with `NLM_F_ACK`, sequence numbers
 * from `firstSeq`), batch end. Exported for tests that compare bytes.
 */
export function encodeBatch(
  items: readonly { msg: number; flags: number; family: number; attrs: Attr[] }[],
  firstSeq: number,
): Buffer {
  const parts: Buffer[] = [
    encodeMessage({ type: NFT.BATCH_BEGIN, flags: NL.F_REQUEST, seq: firstSeq, body: nfgen(0, NFT.SUBSYS) }),
  ];
  items.forEach((it, i) => {
    parts.push(
      encodeMessage({
        type: (NFT.SUBSYS << 8) | it.msg,
        flags: NL.F_REQUEST | NL.F_ACK | it.flags,
        seq: firstSeq + 1 + i,
        body: Buffer.concat([nfgen(it.family), encodeAttrs(it.attrs)]),
      }),
    );
  });
  parts.push(
    encodeMessage({
      type: NFT.BATCH_END,
      flags: NL.F_REQUEST,
      seq: firstSeq + 1 + items.length,
      body: nfgen(0, NFT.SUBSYS),
    }),
  );
  return Buffer.concat(parts);
}

/** The messages that replace table `t` atomically (create-if-missing, delete, then build it again). */
export function replaceTableItems(t: NftTable): BatchItem[] {
  return [
    tableItems(t, 'new'),
    tableItems(t, 'del'),
    tableItems(t, 'new'),
    ...t.chains.map((c) => chainItem(t, c)),
    ...t.rules.map((r) => ruleItem(t, r)),
  ];
}

/** The messages that delete table `t` if it exists (create-if-missing, then delete). */
export function deleteTableItems(t: Pick<NftTable, 'family' | 'name'>): BatchItem[] {
  return [tableItems(t, 'new'), tableItems(t, 'del')];
}

/**
 * Runs one nf_tables transaction on a `NETLINK_NETFILTER` socket and waits for the kernel's
 * answer to every message. A trailing `NFT_MSG_GETGEN` request marks the end of the answers.
 *
 * @throws KernelError naming the first failing message (`NFT_MSG_NEWRULE` …) with its errno;
 * the kernel then applied nothing.
 */
export function runBatch(socket: NetlinkSocket, items: readonly BatchItem[]): void {
  const first = socket.nextSeq();
  for (let i = 0; i < items.length + 2; i++) socket.nextSeq();
  const fenceSeq = socket.nextSeq();
  const batch = encodeBatch(items, first);
  const fence = encodeMessage({
    type: (NFT.SUBSYS << 8) | NFT.MSG_GETGEN,
    flags: NL.F_REQUEST | NL.F_ACK,
    seq: fenceSeq,
    body: nfgen(0),
  });
  // Two datagrams: the kernel ignores whatever follows a batch in the same one.
  socket.send(batch, 'nf_tables batch');
  socket.send(fence, 'NFT_MSG_GETGEN');
  let error: { errno: number; index: number } | undefined;
  for (;;) {
    for (const m of socket.receive('nf_tables batch')) {
      if (m.type !== NL.MSG_ERROR) continue;
      const code = m.body.readInt32LE(0);
      if (m.seq === fenceSeq) {
        if (error)
          fail(itemName(items[error.index]), error.errno, `nf_tables message ${error.index + 1} of ${items.length}`);
        if (code < 0) fail('NFT_MSG_GETGEN', -code);
        return;
      }
      if (code < 0 && error === undefined) error = { errno: -code, index: Math.max(0, m.seq - first - 1) };
    }
  }
}

function itemName(it: BatchItem | undefined): string {
  const names: Record<number, string> = {
    0: 'NFT_MSG_NEWTABLE',
    2: 'NFT_MSG_DELTABLE',
    3: 'NFT_MSG_NEWCHAIN',
    6: 'NFT_MSG_NEWRULE',
  };
  return it === undefined ? 'nf_tables' : (names[it.msg] ?? `NFT_MSG_${it.msg}`);
}

/**
 * Installs `t`, replacing any table of the same family and name, in one atomic transaction.
 *
 * @example
 * ```ts
 * replaceTable({ family: NFT.FAMILY_IPV4, name: 'berth-test', chains: [], rules: [] });
 * ```
 */
export function replaceTable(t: NftTable, socket?: NetlinkSocket): void {
  withSocket(socket, (s) => runBatch(s, replaceTableItems(t)));
}

/** Deletes the table `family`/`name` if it exists. */
export function deleteTable(t: Pick<NftTable, 'family' | 'name'>, socket?: NetlinkSocket): void {
  withSocket(socket, (s) => runBatch(s, deleteTableItems(t)));
}

function withSocket(socket: NetlinkSocket | undefined, fn: (s: NetlinkSocket) => void): void {
  const s = socket ?? NetlinkSocket.open(NL.NETLINK_NETFILTER);
  try {
    fn(s);
  } finally {
    if (socket === undefined) s.close();
  }
}

/** Encodes an IPv4 address for an `immediate` (4 bytes, network order). */
export function ipValue(ip: string): Buffer {
  return ipv4Bytes(ip);
}
