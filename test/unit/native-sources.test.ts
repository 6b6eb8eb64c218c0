/**
 * The shape of berth's C programs (`src/runtime/monitor`): each step is written once, in a file
 * of its own idea, that berth-init and berth-exec (and berth-monitor) include; no file grows past
 * 500 lines. Reads the sources only.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const DIR = join(import.meta.dirname, '..', '..', 'src', 'runtime', 'monitor');
const sources = (): string[] =>
  readdirSync(DIR)
    .filter((f) => /\.[ch]$/.test(f))
    .sort();
const text = (file: string): string => readFileSync(join(DIR, file), 'utf8');

/** The functions a C file defines (a definition starts a line and ends with its opening brace). */
function definedFunctions(source: string): string[] {
  const names: string[] = [];
  for (const m of source.matchAll(
    /^(?:static |void |long |int |char |const |unsigned |u64 |struct \w+ |__attribute__\(\([^)]*\)\) |\*)+(\w+)\([^;{]*\)\s*\{/gm,
  )) {
    names.push(m[1]!);
  }
  return names;
}

describe('native sources', () => {
  it('defines each function of berth-init, berth-exec and berth-monitor in one file only (must, place, the terminal, the privilege drop: shared, not copied)', () => {
    const where = new Map<string, string[]>();
    for (const file of sources())
      for (const name of definedFunctions(text(file))) where.set(name, [...(where.get(name) ?? []), file]);
    // The parser sees definitions of every kind: static, noreturn, the entry points, struct results.
    for (const name of [
      'must',
      'report_failure',
      'open_terminal',
      'drop_privileges',
      'copy_tree',
      'id_of',
      'init_main',
      'exec_main',
      'sys6',
    ]) {
      expect(where.get(name), name).toHaveLength(1);
    }
    expect([...where].filter(([, files]) => files.length > 1)).toEqual([]);
  });

  it('has no C source over 500 lines', () => {
    const long = sources()
      .map((f) => [f, text(f).split('\n').length - 1] as const)
      .filter(([, n]) => n > 500);
    expect(long).toEqual([]);
  });

  it('has no block of six code lines written twice across the C sources', () => {
    const seen = new Map<string, string>();
    const twice: string[] = [];
    for (const file of sources()) {
      const lines = text(file)
        .split('\n')
        .map((l) => l.trim());
      for (let i = 0; i + 6 <= lines.length; i++) {
        const block = lines.slice(i, i + 6);
        // Code, not comments, braces or preprocessor lines.
        if (block.filter((l) => l.length > 3 && !/^(\*|\/\*|\}|#)/.test(l)).length < 5) continue;
        const key = block.join('\n');
        const at = `${file}:${i + 1}`;
        if (seen.has(key)) twice.push(`${seen.get(key)} and ${at}`);
        else seen.set(key, at);
      }
    }
    expect(twice).toEqual([]);
  });
});
