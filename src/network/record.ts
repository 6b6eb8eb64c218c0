/**
 * The persisted record of one network (`<root>/networks/<id>.json`) and of each container
 * attached to it (an endpoint).
 *
 * @module
 */
import { z } from 'zod';
import { PORT_PROTOCOLS } from './ports.js';

/** Schema of a published port as recorded. */
export const publishedPortSchema = z.object({
  containerPort: z.number().int().min(1).max(65535),
  protocol: z.enum(PORT_PROTOCOLS),
  hostIp: z.string(),
  hostPort: z.number().int().min(1).max(65535),
});

/** Schema of one container's attachment to a network. */
export const endpointSchema = z.object({
  containerId: z.string(),
  /** The container's name (without a leading slash); '' when it has none. */
  name: z.string(),
  hostname: z.string(),
  aliases: z.array(z.string()),
  /** The container's IPv4 address (without prefix). */
  address: z.string(),
  mac: z.string(),
  ifName: z.string(),
  hostIfName: z.string(),
  ports: z.array(publishedPortSchema),
  /** Whether this attachment gives the container its default route. */
  defaultRoute: z.boolean(),
});

/** Schema of the persisted network record. */
export const networkRecordSchema = z.object({
  id: z.string().regex(/^[0-9a-f]{64}$/),
  name: z.string(),
  created: z.string(),
  driver: z.literal('bridge'),
  subnet: z.string(),
  gateway: z.string(),
  ipRange: z.string().nullable(),
  internal: z.boolean(),
  labels: z.record(z.string(), z.string()),
  options: z.record(z.string(), z.string()),
  /** The Linux bridge device (`br-` + 12 hex digits of the id). */
  bridge: z.string(),
  mtu: z.number().int(),
  /** The engine's default network (`bridge`): no name resolution between its containers, as Docker. */
  isDefault: z.boolean(),
  endpoints: z.record(z.string(), endpointSchema),
});

/** The persisted record of one network. */
export type NetworkRecord = z.infer<typeof networkRecordSchema>;

/** One container's attachment to a network, as recorded. */
export type EndpointRecord = z.infer<typeof endpointSchema>;
