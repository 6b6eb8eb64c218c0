/**
 * Name resolution between containers: **hosts files kept current**, not an embedded DNS server.
 *
 * Each container's `/etc/hosts` is a file in its directory (`<root>/containers/<id>/hosts`),
 * bind-mounted into it. It holds the usual loopback lines, the container's own address and
 * names, then a section after {@link PEERS_MARKER} with every peer on the container's
 * user-defined networks (name, aliases on that network, short id). On every connect and
 * disconnect, {@link rewriteHostsPeers} rewrites that section of each affected file **in place**
 * (same inode: a rename would not be seen through the bind mount), so a name resolves as soon
 * as the call returns, well inside 100 ms. The default `bridge` network gets no name resolution,
 * as with Docker. Other names go to the resolvers of resolv.conf (see `resolvConfFile` in
 * `src/container/spec.ts`).
 *
 * @module
 */
import { readFileSync, writeFileSync } from 'node:fs';

/** The line that starts the peers section of a hosts file. */
export const PEERS_MARKER = '# berth: containers on the same networks';

/** One line of a hosts file: an address and its names. */
export interface HostsEntry {
  /** IPv4 address. */
  address: string;
  /** Names, first one canonical. */
  names: string[];
}

/** What {@link hostsFileContent} needs to know about the container itself. */
export interface HostsSelf {
  /** The container's hostname. */
  hostname: string;
  /** Its domain name; '' when none. */
  domainname?: string;
  /** Its addresses and names on its networks (hostname first); absent or empty with no network. */
  addresses?: HostsEntry[];
  /** `extraHosts` entries (`name:ip` already split). */
  extraHosts?: HostsEntry[];
}

function line(e: HostsEntry): string {
  return `${e.address}\t${[...new Set(e.names.filter(Boolean))].join(' ')}`;
}

/**
 * The whole hosts file of a container: loopback lines, its own addresses (or `127.0.1.1` with
 * its hostname when it has none), extra hosts, then the peers section.
 *
 * @example
 * ```ts
 * hostsFileContent({ hostname: 'web', addresses: [{ address: '10.89.0.2', names: ['web'] }] }, [{ address: '10.89.0.3', names: ['db'] }]);
 * ```
 */
export function hostsFileContent(self: HostsSelf, peers: readonly HostsEntry[]): string {
  const fqdn = self.domainname ? [`${self.hostname}.${self.domainname}`, self.hostname] : [self.hostname];
  const own = self.addresses?.length
    ? self.addresses.map((a) => line({ address: a.address, names: [...fqdn, ...a.names] }))
    : [line({ address: '127.0.1.1', names: fqdn })];
  return [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
    ...own,
    ...(self.extraHosts ?? []).map(line),
    PEERS_MARKER,
    ...peers.map(line),
    '',
  ].join('\n');
}

/** Replaces the peers section of hosts-file text (appending a section when it has none). */
export function replacePeers(text: string, peers: readonly HostsEntry[]): string {
  const i = text.indexOf(`${PEERS_MARKER}\n`);
  const head = i >= 0 ? text.slice(0, i) : text.endsWith('\n') || text === '' ? text : `${text}\n`;
  return `${head}${PEERS_MARKER}\n${peers.map((p) => `${line(p)}\n`).join('')}`;
}

/**
 * Rewrites the peers section of the hosts file at `path` in place (truncate and write on the
 * same inode, so a bind mount of it sees the change). Returns false when the file does not exist.
 */
export function rewriteHostsPeers(path: string, peers: readonly HostsEntry[]): boolean {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false; // no hosts file, as documented
    throw e;
  }
  const next = replacePeers(text, peers);
  // Flag 'w' truncates the existing file: same inode, unlike a write-and-rename.
  if (next !== text) writeFileSync(path, next, { flag: 'w' });
  return true;
}
