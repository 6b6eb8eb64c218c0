/**
 * Installing the nf_tables table of one engine root: rebuilt from every network record under the
 * rules lock (`networks/rules.lock`), and skipped when it is the one this process last installed.
 *
 * @module
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { withLock } from '../state/lock.js';
import type { RecordStore } from '../state/record-store.js';
import type { NetworkDataplane } from './dataplane.js';
import type { NetworkRecord } from './record.js';
import { buildRuleset, tableName } from './rules.js';

/** The ruleset this process last installed, per nf_tables table name. */
const appliedRules = new Map<string, string>();

/** Rebuilds the nf_tables table of root `root` from every record in `records` (kept in `dir`), under the rules lock. */
export async function applyRules(
  root: string,
  dir: string,
  records: RecordStore<NetworkRecord>,
  dp: NetworkDataplane,
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await withLock(join(dir, 'rules.lock'), async () => {
    const name = tableName(root);
    const table = buildRuleset(name, await records.list());
    // Most attachments change no rule (no published port): skip the kernel round trip then.
    const key = JSON.stringify(table);
    if (appliedRules.get(name) === key) return;
    dp.applyRules(name, table);
    appliedRules.set(name, key);
  });
}
