/**
 * The rtnetlink operations berth needs, over a synchronous {@link NetlinkSocket}: bridges, veth
 * pairs, link settings, IPv4 addresses and routes.
 *
 * Everything here is synchronous and allocates little, so a forked container init (which may
 * only make synchronous koffi calls) can use it. A socket works in the network namespace it was
 * opened in, whatever namespace the calling thread is in later: an init can open one before
 * `unshare(CLONE_NEWNET)` and go on using it to act on the host's namespace.
 *
 * Requests carry `NLM_F_ACK`; an `NLMSG_ERROR` reply with a negative code becomes a
 * {@link KernelError} whose syscall names the request (e.g. `RTM_NEWLINK`).
 *
 * @module
 */
import { fail } from './libc.js';
import { NetlinkSocket } from './netlink-socket.js';
import {
  IFA,
  IFF_UP,
  IFLA,
  NL,
  RTA,
  RTM,
  attr,
  attrS32,
  attrString,
  attrText,
  attrU32,
  encodeIfAddr,
  encodeIfInfo,
  encodeRtMsg,
  ipv4Bytes,
  ipv4Text,
  macBytes,
  macText,
  nested,
  parseAttrs,
  parseIfAddr,
  parseIfInfo,
  parseRtMsg,
  type Attr,
  type NlReply,
} from './netlink-attrs.js';

const AF_INET = 2;

/** A link as rtnetlink reports it. */
export interface LinkInfo {
  /** Interface index. */
  index: number;
  /** Interface name. */
  name: string;
  /** `ifi_flags` (IFF_UP = 1, …). */
  flags: number;
  /** Whether IFF_UP is set. */
  up: boolean;
  /** MTU. */
  mtu: number;
  /** Hardware address, `aa:bb:…`; absent for links without one. */
  mac?: string;
  /** Index of the master (bridge) device; absent when the link has none. */
  master?: number;
  /** `IFLA_INFO_KIND` (`bridge`, `veth`, …); absent for plain devices. */
  kind?: string;
}

/** An IPv4 address on a link. */
export interface AddrInfo {
  /** Index of the link holding it. */
  index: number;
  /** The address, dotted. */
  address: string;
  /** The prefix length. */
  prefixLen: number;
}

/** An IPv4 route of the main table. */
export interface RouteInfo {
  /** Destination network, dotted (`0.0.0.0` for the default route). */
  dst: string;
  /** Destination prefix length (0 for the default route). */
  dstLen: number;
  /** Gateway, when the route has one. */
  gateway?: string;
  /** Outgoing interface index, when the route has one. */
  oif?: number;
  /** `rtm_table` / `RTA_TABLE`. */
  table: number;
}

/** Options of {@link Rtnetlink.createVeth}. */
export interface VethOptions {
  /** Name of the end created in the socket's namespace. */
  name: string;
  /** Name of the peer end. */
  peerName: string;
  /** Moves the peer into the network namespace this fd refers to (`IFLA_NET_NS_FD`). Default: the same namespace. */
  peerNetnsFd?: number;
  /** MAC address of the first end. */
  mac?: string;
  /** MAC address of the peer. */
  peerMac?: string;
  /** MTU of both ends. */
  mtu?: number;
}

/**
 * rtnetlink operations on one netlink socket (and so on the network namespace the socket was
 * opened in). Every method is synchronous.
 *
 * @example
 * ```ts
 * const nl = Rtnetlink.open();
 * try {
 *   nl.createBridge('br-test');
 *   nl.addAddress('br-test', '10.89.7.1', 24);
 *   nl.setUp('br-test');
 * } finally {
 *   nl.close();
 * }
 * ```
 */
export class Rtnetlink {
  /** The underlying socket. */
  readonly socket: NetlinkSocket;

  /** Wraps a `NETLINK_ROUTE` socket. */
  constructor(socket: NetlinkSocket) {
    this.socket = socket;
  }

  /** Opens a `NETLINK_ROUTE` socket in the calling thread's network namespace. */
  static open(): Rtnetlink {
    return new Rtnetlink(NetlinkSocket.open(NL.NETLINK_ROUTE));
  }

  /** Uses an already open `NETLINK_ROUTE` socket (not closed by {@link Rtnetlink.close}). */
  static fromFd(fd: number): Rtnetlink {
    return new Rtnetlink(NetlinkSocket.fromFd(fd));
  }

  /** Closes the socket (when owned). */
  close(): void {
    this.socket.close();
  }

  #link(index: number, attrs: Attr[], flags = 0, change = 0): Buffer {
    return Buffer.concat([encodeIfInfo({ index, flags, change }), ...attrs.map((a) => encodeAttrsOne(a))]);
  }

  /** The index of link `name`; throws KernelError (ENODEV) when there is none. */
  linkIndex(name: string): number {
    const r = this.socket.request(RTM.GETLINK, 0, this.#link(0, [attrString(IFLA.IFNAME, name)]), 'RTM_GETLINK', name);
    const m = r[0];
    if (m === undefined) fail('RTM_GETLINK', 19, name);
    return parseIfInfo(m.body).index;
  }

  /** The link `name`, or undefined when there is none. */
  getLink(name: string): LinkInfo | undefined {
    try {
      const r = this.socket.request(
        RTM.GETLINK,
        0,
        this.#link(0, [attrString(IFLA.IFNAME, name)]),
        'RTM_GETLINK',
        name,
      );
      return r[0] === undefined ? undefined : parseLink(r[0]);
    } catch (e) {
      if (isErrno(e, 19)) return undefined;
      throw e;
    }
  }

  /** Every link of the namespace. */
  listLinks(): LinkInfo[] {
    return this.socket.request(RTM.GETLINK, NL.F_DUMP, encodeIfInfo({}), 'RTM_GETLINK', 'dump').map(parseLink);
  }

  #resolve(link: string | number): number {
    return typeof link === 'number' ? link : this.linkIndex(link);
  }

  #newLink(attrs: Attr[], detail: string): void {
    this.socket.request(RTM.NEWLINK, NL.F_CREATE | NL.F_EXCL, this.#link(0, attrs), 'RTM_NEWLINK', detail);
  }

  #setLink(link: string | number, attrs: Attr[], flags = 0, change = 0, detail = String(link)): void {
    const index = this.#resolve(link);
    this.socket.request(RTM.NEWLINK, 0, this.#link(index, attrs, flags, change), 'RTM_NEWLINK', detail);
  }

  /** Creates a Linux bridge `name` (down). Throws KernelError EEXIST when the name is taken. */
  createBridge(name: string, options: { mtu?: number; mac?: string } = {}): void {
    const attrs: Attr[] = [
      attrString(IFLA.IFNAME, name),
      nested(IFLA.LINKINFO, [attrString(IFLA.INFO_KIND, 'bridge')]),
    ];
    if (options.mtu !== undefined) attrs.push(attrU32(IFLA.MTU, options.mtu));
    if (options.mac !== undefined) attrs.push(attr(IFLA.ADDRESS, macBytes(options.mac)));
    this.#newLink(attrs, `bridge ${name}`);
  }

  /**
   * Creates a veth pair: `name` in the socket's namespace, `peerName` in the namespace of
   * `peerNetnsFd` (or the same one). Both ends start down.
   */
  createVeth(o: VethOptions): void {
    const peer: Attr[] = [attrString(IFLA.IFNAME, o.peerName)];
    if (o.peerNetnsFd !== undefined) peer.push(attrS32(IFLA.NET_NS_FD, o.peerNetnsFd));
    if (o.peerMac !== undefined) peer.push(attr(IFLA.ADDRESS, macBytes(o.peerMac)));
    if (o.mtu !== undefined) peer.push(attrU32(IFLA.MTU, o.mtu));
    const peerData = Buffer.concat([encodeIfInfo({}), ...peer.map(encodeAttrsOne)]);
    const attrs: Attr[] = [
      attrString(IFLA.IFNAME, o.name),
      nested(IFLA.LINKINFO, [
        attrString(IFLA.INFO_KIND, 'veth'),
        nested(IFLA.INFO_DATA, [attr(IFLA.VETH_INFO_PEER, peerData)]),
      ]),
    ];
    if (o.mac !== undefined) attrs.push(attr(IFLA.ADDRESS, macBytes(o.mac)));
    if (o.mtu !== undefined) attrs.push(attrU32(IFLA.MTU, o.mtu));
    this.#newLink(attrs, `veth ${o.name}/${o.peerName}`);
  }

  /** Moves `link` into the network namespace `netnsFd` refers to. */
  moveToNetns(link: string | number, netnsFd: number): void {
    this.#setLink(link, [attrS32(IFLA.NET_NS_FD, netnsFd)]);
  }

  /** Renames `link` (it must be down). */
  rename(link: string | number, newName: string): void {
    this.#setLink(link, [attrString(IFLA.IFNAME, newName)], 0, 0, `${link} -> ${newName}`);
  }

  /** Sets the MAC address of `link`. */
  setMac(link: string | number, mac: string): void {
    this.#setLink(link, [attr(IFLA.ADDRESS, macBytes(mac))], 0, 0, `${link} ${mac}`);
  }

  /** Sets the MTU of `link`. */
  setMtu(link: string | number, mtu: number): void {
    this.#setLink(link, [attrU32(IFLA.MTU, mtu)], 0, 0, `${link} mtu ${mtu}`);
  }

  /** Makes `master` (a bridge) the master of `link`; `master` 0 detaches it. */
  setMaster(link: string | number, master: string | number): void {
    const m = master === 0 ? 0 : this.#resolve(master);
    this.#setLink(link, [attrU32(IFLA.MASTER, m)], 0, 0, `${link} master ${master}`);
  }

  /** Sets IFF_UP on `link`. */
  setUp(link: string | number): void {
    this.#setLink(link, [], IFF_UP, IFF_UP, `${link} up`);
  }

  /** Clears IFF_UP on `link`. */
  setDown(link: string | number): void {
    this.#setLink(link, [], 0, IFF_UP, `${link} down`);
  }

  /** Deletes `link` (deleting one end of a veth pair deletes both). */
  deleteLink(link: string | number): void {
    const index = this.#resolve(link);
    this.socket.request(RTM.DELLINK, 0, this.#link(index, []), 'RTM_DELLINK', String(link));
  }

  /** Deletes link `name` if it exists; returns whether it did. */
  deleteLinkIfExists(name: string): boolean {
    try {
      this.deleteLink(name);
      return true;
    } catch (e) {
      if (isErrno(e, 19)) return false;
      throw e;
    }
  }

  #addrBody(index: number, address: string, prefixLen: number, withBroadcast: boolean): Buffer {
    const ip = ipv4Bytes(address);
    const attrs: Attr[] = [attr(IFA.LOCAL, ip), attr(IFA.ADDRESS, ip)];
    if (withBroadcast && prefixLen < 31) {
      const v = ip.readUInt32BE(0) | (prefixLen === 0 ? 0xffffffff : 0xffffffff >>> prefixLen);
      const b = Buffer.alloc(4);
      b.writeUInt32BE(v >>> 0);
      attrs.push(attr(IFA.BROADCAST, b));
    }
    return Buffer.concat([
      encodeIfAddr({ family: AF_INET, prefixlen: prefixLen, index }),
      ...attrs.map(encodeAttrsOne),
    ]);
  }

  /** Adds the IPv4 address `address/prefixLen` (with its broadcast address) to `link`. */
  addAddress(link: string | number, address: string, prefixLen: number): void {
    const index = this.#resolve(link);
    this.socket.request(
      RTM.NEWADDR,
      NL.F_CREATE | NL.F_EXCL,
      this.#addrBody(index, address, prefixLen, true),
      'RTM_NEWADDR',
      `${address}/${prefixLen} on ${link}`,
    );
  }

  /** Removes the IPv4 address `address/prefixLen` from `link`. */
  deleteAddress(link: string | number, address: string, prefixLen: number): void {
    const index = this.#resolve(link);
    this.socket.request(
      RTM.DELADDR,
      0,
      this.#addrBody(index, address, prefixLen, false),
      'RTM_DELADDR',
      `${address}/${prefixLen} on ${link}`,
    );
  }

  /** Every IPv4 address of the namespace (or of `link` only). */
  listAddresses(link?: string | number): AddrInfo[] {
    const only = link === undefined ? undefined : this.#resolve(link);
    const r = this.socket.request(
      RTM.GETADDR,
      NL.F_DUMP,
      encodeIfAddr({ family: AF_INET, prefixlen: 0, index: 0 }),
      'RTM_GETADDR',
      'dump',
    );
    const out: AddrInfo[] = [];
    for (const m of r) {
      const h = parseIfAddr(m.body);
      if (h.family !== AF_INET || (only !== undefined && h.index !== only)) continue;
      const a = parseAttrs(m.body.subarray(8));
      const ip = a.get(IFA.LOCAL) ?? a.get(IFA.ADDRESS);
      if (ip !== undefined) out.push({ index: h.index, address: ipv4Text(ip), prefixLen: h.prefixlen });
    }
    return out;
  }

  /**
   * Adds an IPv4 route in the main table: to `dst/dstLen` (default `0.0.0.0/0`) via `gateway`
   * and/or out of `link`.
   */
  addRoute(r: { dst?: string; dstLen?: number; gateway?: string; link?: string | number }): void {
    const dstLen = r.dstLen ?? 0;
    const attrs: Attr[] = [];
    if (dstLen > 0) attrs.push(attr(RTA.DST, ipv4Bytes(r.dst ?? '0.0.0.0')));
    if (r.gateway !== undefined) attrs.push(attr(RTA.GATEWAY, ipv4Bytes(r.gateway)));
    if (r.link !== undefined) attrs.push(attrU32(RTA.OIF, this.#resolve(r.link)));
    const body = Buffer.concat([
      encodeRtMsg({
        family: AF_INET,
        dstLen,
        table: RTM.TABLE_MAIN,
        protocol: RTM.PROT_BOOT,
        scope: r.gateway === undefined ? RTM.SCOPE_LINK : RTM.SCOPE_UNIVERSE,
        type: RTM.TYPE_UNICAST,
      }),
      ...attrs.map(encodeAttrsOne),
    ]);
    const what = `${r.dst ?? '0.0.0.0'}/${dstLen}${r.gateway ? ` via ${r.gateway}` : ''}${r.link !== undefined ? ` dev ${r.link}` : ''}`;
    this.socket.request(RTM.NEWROUTE, NL.F_CREATE | NL.F_EXCL, body, 'RTM_NEWROUTE', what);
  }

  /** Adds the default route via `gateway` (optionally out of `link`). */
  addDefaultRoute(gateway: string, link?: string | number): void {
    this.addRoute(link === undefined ? { gateway } : { gateway, link });
  }

  /** The IPv4 routes of the main table. */
  listRoutes(): RouteInfo[] {
    const r = this.socket.request(RTM.GETROUTE, NL.F_DUMP, encodeRtMsg({ family: AF_INET }), 'RTM_GETROUTE', 'dump');
    const out: RouteInfo[] = [];
    for (const m of r) {
      const h = parseRtMsg(m.body);
      const a = parseAttrs(m.body.subarray(12));
      const tableAttr = a.get(RTA.TABLE);
      const table = tableAttr === undefined ? h.table : tableAttr.readUInt32LE(0);
      if (h.family !== AF_INET || table !== RTM.TABLE_MAIN) continue;
      const dst = a.get(RTA.DST);
      const gw = a.get(RTA.GATEWAY);
      const oif = a.get(RTA.OIF);
      const route: RouteInfo = { dst: dst === undefined ? '0.0.0.0' : ipv4Text(dst), dstLen: h.dstLen, table };
      if (gw !== undefined) route.gateway = ipv4Text(gw);
      if (oif !== undefined) route.oif = oif.readUInt32LE(0);
      out.push(route);
    }
    return out;
  }
}

function encodeAttrsOne(a: Attr): Buffer {
  const len = 4 + a.data.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(a.type, 2);
  a.data.copy(out, 4);
  return out;
}

function parseLink(m: NlReply): LinkInfo {
  const h = parseIfInfo(m.body);
  const a = parseAttrs(m.body.subarray(16));
  const link: LinkInfo = {
    index: h.index,
    name: attrText(a.get(IFLA.IFNAME)) ?? '',
    flags: h.flags,
    up: (h.flags & IFF_UP) !== 0,
    mtu: a.get(IFLA.MTU)?.readUInt32LE(0) ?? 0,
  };
  const mac = a.get(IFLA.ADDRESS);
  if (mac !== undefined && mac.length === 6) link.mac = macText(mac);
  const master = a.get(IFLA.MASTER);
  if (master !== undefined) link.master = master.readUInt32LE(0);
  const info = a.get(IFLA.LINKINFO);
  if (info !== undefined) {
    const kind = attrText(parseAttrs(info).get(IFLA.INFO_KIND));
    if (kind !== undefined) link.kind = kind;
  }
  return link;
}

/** Whether `e` is a KernelError with errno `errno`. */
function isErrno(e: unknown, errno: number): boolean {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as { errno?: unknown }).errno === errno &&
    (e as { syscall?: unknown }).syscall !== undefined
  );
}
