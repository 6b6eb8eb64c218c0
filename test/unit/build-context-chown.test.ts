/**
 * `--chown` specs that need no passwd file: BuildKit's numeric forms, and malformed specs refused
 * before the root is read.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { resolveChown } from '../../src/image/build/context/user.js';

const NO_ROOT = '/nonexistent/berth-root';

describe('resolveChown without a passwd file', () => {
  it.each([
    ['0', { uid: 0, gid: 0 }],
    ['1000', { uid: 1000, gid: 1000 }],
    ['1000:50', { uid: 1000, gid: 50 }],
    ['4294967294:0', { uid: 4294967294, gid: 0 }],
  ])('%s gives %j', async (spec, want) => {
    expect(await resolveChown(NO_ROOT, spec)).toEqual(want);
  });

  it.each(['', ':', 'a:', ':b', 'a:b:c', 'a b', '4294967295', '1:4294967295'])(
    'refuses %j with InvalidArgumentError (field chown)',
    async (spec) => {
      await expect(resolveChown(NO_ROOT, spec)).rejects.toMatchObject({ field: 'chown' });
      await expect(resolveChown(NO_ROOT, spec)).rejects.toThrow(InvalidArgumentError);
    },
  );
});
