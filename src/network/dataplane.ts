/**
 * The host side of networking as one small seam: bridges, stale links, the host's routes, the
 * nf_tables table, the sysctls forwarding needs, and the interfaces `network.connect` adds to a
 * running container. {@link LinuxDataplane} does it with berth's rtnetlink and nf_tables clients
 * (no `ip`, `iptables` or `nft` binary); unit tests give the service a recording fake instead.
 *
 * @module
 */
import { writeFileSync } from 'node:fs';
import { Rtnetlink } from '../kernel/netlink.js';
import { NFT, deleteTable, replaceTable, type NftTable } from '../kernel/nftables.js';
import { close, open } from '../kernel/fd.js';
import { O_CLOEXEC, O_RDONLY } from '../kernel/constants.js';
import { removeInterfaceFromHost, setupInterfaceFromHost } from '../runtime/net-setup.js';
import type { PlanInterface } from '../runtime/plan-interface.js';

/** What the network service needs from the host's kernel. Every method is synchronous. */
export interface NetworkDataplane {
  /** The destinations (`a.b.c.d/n`) of the host's IPv4 routes in the main table, default route excluded. */
  hostRoutes(): string[];
  /**
   * Makes sure bridge `name` exists, is up, has `gateway/prefixLen` (when given) and MTU `mtu`;
   * also enables IPv4 forwarding and `route_localnet` on it.
   */
  ensureBridge(name: string, gateway: string | undefined, prefixLen: number, mtu: number): void;
  /** Deletes link `name` (a bridge or a stale veth) if it exists. */
  deleteLink(name: string): void;
  /** Installs `table` (replacing the one of the same name), or deletes table `name` when `table` is undefined. */
  applyRules(name: string, table: NftTable | undefined): void;
  /** Adds `iface` to the network namespace of the running process `pid`, from the host (for `network.connect`). */
  addInterface(pid: number, iface: PlanInterface): void;
  /** Removes interface `ifName` from the network namespace of process `pid` (for `network.disconnect`); its host end goes with it. */
  removeInterface(pid: number, ifName: string): void;
}

function sysctl(path: string, value: string): void {
  writeFileSync(`/proc/sys/${path}`, value);
}

/** The dataplane of the Linux host berth runs on. */
export class LinuxDataplane implements NetworkDataplane {
  #with<T>(fn: (nl: Rtnetlink) => T): T {
    const nl = Rtnetlink.open();
    try {
      return fn(nl);
    } finally {
      nl.close();
    }
  }

  /** See {@link NetworkDataplane.hostRoutes}. */
  hostRoutes(): string[] {
    return this.#with((nl) =>
      nl
        .listRoutes()
        .filter((r) => r.dstLen > 0)
        .map((r) => `${r.dst}/${r.dstLen}`),
    );
  }

  /** See {@link NetworkDataplane.ensureBridge}. */
  ensureBridge(name: string, gateway: string | undefined, prefixLen: number, mtu: number): void {
    this.#with((nl) => {
      let link = nl.getLink(name);
      if (link === undefined) {
        try {
          nl.createBridge(name, { mtu });
        } catch (e) {
          if ((e as { errnoCode?: string }).errnoCode !== 'EEXIST') throw e;
        }
        link = nl.getLink(name);
      }
      if (
        gateway !== undefined &&
        !nl.listAddresses(name).some((a) => a.address === gateway && a.prefixLen === prefixLen)
      ) {
        nl.addAddress(name, gateway, prefixLen);
      }
      if (link !== undefined && link.mtu !== mtu) nl.setMtu(name, mtu);
      if (!link?.up) nl.setUp(name);
    });
    sysctl('net/ipv4/ip_forward', '1');
    sysctl(`net/ipv4/conf/${name}/route_localnet`, '1');
  }

  /** See {@link NetworkDataplane.deleteLink}. */
  deleteLink(name: string): void {
    this.#with((nl) => nl.deleteLinkIfExists(name));
  }

  /** See {@link NetworkDataplane.applyRules}. */
  applyRules(name: string, table: NftTable | undefined): void {
    if (table === undefined) deleteTable({ family: NFT.FAMILY_IPV4, name });
    else replaceTable(table);
  }

  /** Runs `fn` with an fd of the network namespace of process `pid`. */
  #inNetnsOf<T>(pid: number, fn: (netnsFd: number) => T): T {
    const fd = open(`/proc/${pid}/ns/net`, O_RDONLY | O_CLOEXEC);
    try {
      return fn(fd);
    } finally {
      close(fd);
    }
  }

  /** See {@link NetworkDataplane.addInterface}. */
  addInterface(pid: number, iface: PlanInterface): void {
    this.#inNetnsOf(pid, (fd) => setupInterfaceFromHost(iface, fd));
  }

  /** See {@link NetworkDataplane.removeInterface}. */
  removeInterface(pid: number, ifName: string): void {
    this.#inNetnsOf(pid, (fd) => removeInterfaceFromHost(ifName, fd));
  }
}
