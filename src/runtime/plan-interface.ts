/**
 * The contract between the network service and the container start path: one
 * {@link PlanInterface} per network a container joins, plain JSON so it can travel in a plan.
 *
 * @module
 */
import { z } from 'zod';

/** Schema of a {@link PlanInterface} (for the plan protocol's checks). */
export const planInterfaceSchema = z.strictObject({
  bridge: z.string().min(1).max(15),
  hostIfName: z.string().min(1).max(15),
  ifName: z.string().regex(/^eth\d+$/),
  mac: z.string().regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/),
  address: z.string().regex(/^\d+\.\d+\.\d+\.\d+\/\d+$/),
  gateway: z.string().optional(),
  mtu: z.number().int().min(68).max(65535),
  defaultRoute: z.boolean(),
});

/**
 * One network interface of a container, as `setupInterfacesInContainer` creates it.
 *
 * @example
 * ```ts
 * const i: PlanInterface = { bridge: 'br-0123456789ab', hostIfName: 'vb5f3a9c0d1e2b', ifName: 'eth0',
 *   mac: '02:42:0a:59:00:02', address: '10.89.0.2/24', gateway: '10.89.0.1', mtu: 1500, defaultRoute: true };
 * ```
 */
export interface PlanInterface {
  /** The host bridge the host end joins. */
  bridge: string;
  /** The host end of the veth pair: `vb` + 12 hex digits. */
  hostIfName: string;
  /** The container end: `eth0`, `eth1`, … */
  ifName: string;
  /** The container end's MAC address. */
  mac: string;
  /** The container's address with prefix, e.g. `10.89.0.2/24`. */
  address: string;
  /** The network's gateway (the bridge's address); absent when the network has none. */
  gateway?: string;
  /** MTU of both ends. */
  mtu: number;
  /** Whether to add the default route via `gateway` (the first non-internal network only). */
  defaultRoute: boolean;
}
