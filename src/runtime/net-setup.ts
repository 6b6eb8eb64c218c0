/**
 * Network setup inside a container's network namespace: synchronous kernel calls only, so a
 * forked init (no event loop) can run it right after `unshare(CLONE_NEWNET)`.
 *
 * For each {@link PlanInterface}:
 *
 * 1. On a netlink socket opened in the container's (current) namespace, create the veth pair
 *    with `ifName` here and `hostIfName` placed in the host's namespace (`IFLA_NET_NS_FD` =
 *    `hostNetnsFd`), both with the plan's MTU, the container end with the plan's MAC.
 * 2. On a socket in the host's namespace, make the host end a port of the bridge and bring it up.
 *    That socket is `hostNetlinkFd` when the init opened one before unsharing (preferred: no
 *    namespace switch at all); otherwise it is opened inside a short `setns` dance (enter the
 *    host's namespace, open the socket, return at once): a netlink socket keeps working in the
 *    namespace it was opened in.
 * 3. Back on the container's socket: the address, link up, and the default route via the gateway.
 *
 * When the container's namespace goes (its last process exits), the kernel deletes the veth
 * pair, host end included; `NetworkService.releaseAttachment` also deletes a leftover host end.
 *
 * @module
 */
import { cleanupAfter } from '../errors.js';
import { Rtnetlink } from '../kernel/netlink.js';
import { withNetns } from './netns.js';
import type { PlanInterface } from './plan-interface.js';

function configureContainerSide(local: Rtnetlink, i: PlanInterface): void {
  const [address, prefix] = i.address.split('/');
  local.addAddress(i.ifName, address!, Number(prefix));
  local.setUp(i.ifName);
  if (i.defaultRoute && i.gateway !== undefined) local.addDefaultRoute(i.gateway, i.ifName);
}

function attachHostSide(host: Rtnetlink, i: PlanInterface): void {
  host.setMaster(i.hostIfName, i.bridge);
  host.setUp(i.hostIfName);
}

/** Opens a rtnetlink socket in the namespace `netnsFd` refers to, returning the thread to its own namespace. */
export function openRtnetlinkIn(netnsFd: number): Rtnetlink {
  return withNetns(netnsFd, () => Rtnetlink.open());
}

/**
 * Creates and configures the container's interfaces from inside its network namespace.
 * Synchronous; for the forked init after it unshared its network namespace.
 *
 * @param ifaces - From `NetworkService.prepareAttachment`, one per network, in order.
 * @param hostNetnsFd - An fd of the host's network namespace (`/proc/self/ns/net` opened before unsharing).
 * @param hostNetlinkFd - A `NETLINK_ROUTE` socket opened before unsharing (so in the host's
 * namespace), or undefined to open one through a `setns` dance.
 * @throws KernelError naming the failing rtnetlink request.
 */
export function setupInterfacesInContainer(
  ifaces: readonly PlanInterface[],
  hostNetnsFd: number,
  hostNetlinkFd: number | undefined,
): void {
  if (ifaces.length === 0) return;
  const local = Rtnetlink.open();
  const host = hostNetlinkFd === undefined ? openRtnetlinkIn(hostNetnsFd) : Rtnetlink.fromFd(hostNetlinkFd);
  try {
    for (const i of ifaces) {
      local.createVeth({ name: i.ifName, peerName: i.hostIfName, peerNetnsFd: hostNetnsFd, mac: i.mac, mtu: i.mtu });
      attachHostSide(host, i);
      configureContainerSide(local, i);
    }
  } finally {
    host.close();
    local.close();
  }
}

/**
 * Adds one interface to a running container from the host (for `network.connect`): the veth
 * pair is created from the host's namespace with its container end placed in the namespace of
 * `containerNetnsFd` (e.g. `/proc/<pid>/ns/net`), then configured through a socket opened there.
 * Synchronous.
 */
export function setupInterfaceFromHost(i: PlanInterface, containerNetnsFd: number): void {
  const host = Rtnetlink.open();
  try {
    host.createVeth({
      name: i.hostIfName,
      peerName: i.ifName,
      peerNetnsFd: containerNetnsFd,
      peerMac: i.mac,
      mtu: i.mtu,
    });
    try {
      attachHostSide(host, i);
      const local = openRtnetlinkIn(containerNetnsFd);
      try {
        configureContainerSide(local, i);
      } finally {
        local.close();
      }
    } catch (e) {
      throw cleanupAfter(e, () => host.deleteLinkIfExists(i.hostIfName));
    }
  } finally {
    host.close();
  }
}

/**
 * Makes a new network namespace ready from the host, for a container whose init runs no
 * JavaScript (`berth-init`): loopback up, then each of `ifaces` as {@link setupInterfaceFromHost}
 * adds it. Synchronous. On failure the host ends made so far are deleted.
 */
export function setupNetworkFromHost(ifaces: readonly PlanInterface[], netnsFd: number): void {
  const local = openRtnetlinkIn(netnsFd);
  try {
    local.setUp('lo');
  } finally {
    local.close();
  }
  const done: PlanInterface[] = [];
  try {
    for (const i of ifaces) {
      setupInterfaceFromHost(i, netnsFd);
      done.push(i);
    }
  } catch (e) {
    throw cleanupAfter(e, () => {
      const host = Rtnetlink.open();
      try {
        for (const i of done) host.deleteLinkIfExists(i.hostIfName);
      } finally {
        host.close();
      }
    });
  }
}

/** Removes the interface `ifName` from the namespace `containerNetnsFd` refers to (for `network.disconnect`); deleting it deletes its host end too. */
export function removeInterfaceFromHost(ifName: string, containerNetnsFd: number): void {
  const local = openRtnetlinkIn(containerNetnsFd);
  try {
    local.deleteLinkIfExists(ifName);
  } finally {
    local.close();
  }
}
