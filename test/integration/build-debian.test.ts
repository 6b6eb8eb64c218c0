/**
 * One realistic application build on a real Debian base (debootstrap minbase, pushed to and pulled
 * from a local `docker-registry`): `useradd` in a RUN, `COPY --chown` by the names that RUN made,
 * `ENTRYPOINT` with `CMD`. The base is built once per machine (about a minute, from the Debian
 * mirror); the test runs when it is built already or `BERTH_TEST_DEBIAN=1` asks for it, so the
 * default suite does not pay for debootstrap.
 */
import { describe, expect, it } from 'vitest';
import { Image } from '../../src/index.js';
import { debianRootfs, debianRootfsCached } from '../../bench/lib/debian-image.js';
import { build, runImage } from '../helpers/build.js';
import { testEngine } from '../helpers/engine.js';
import { hasRegistry, startRegistry } from '../helpers/registry.js';

const enabled = hasRegistry() && (process.env.BERTH_TEST_DEBIAN === '1' || debianRootfsCached());

describe.skipIf(!enabled)('Image.build on a Debian base', () => {
  it(
    'builds an app with useradd, COPY --chown by the new names and ENTRYPOINT with CMD, from a base pulled from a local registry',
    { timeout: 600_000 },
    async () => {
      await using reg = await startRegistry();
      const base = `${reg.host}/test/debian:bookworm`;
      {
        const { engine } = await testEngine({ image: false });
        await Image.import(debianRootfs(), { ref: base, engine, changes: ['CMD ["bash"]'] });
        await new Image(base, { engine }).push();
      }
      const { engine } = await testEngine({ image: false });
      const dockerfile = [
        `FROM ${base}`,
        'RUN useradd --create-home --uid 1500 --shell /bin/bash app',
        'WORKDIR /home/app',
        'COPY --chown=app:app greet.sh ./',
        'RUN chmod 755 greet.sh && stat -c "%U:%G" greet.sh > owner.txt',
        'USER app',
        'ENTRYPOINT ["./greet.sh"]',
        'CMD ["world"]',
      ].join('\n');
      const greet = '#!/bin/bash\necho "hello $1 from $(id -un) $(id -u) in $PWD, file owned by $(cat owner.txt)"\n';
      const { id, image } = await build(engine, {
        context: { Dockerfile: dockerfile, 'greet.sh': greet },
        tag: 'app:1',
      });
      const info = await image.inspect();
      expect(info.config.entrypoint).toEqual(['./greet.sh']);
      expect(info.config.cmd).toEqual(['world']);
      expect(info.config.user).toBe('app');
      expect((await runImage(engine, id)).output).toBe(
        'hello world from app 1500 in /home/app, file owned by app:app\n',
      );
      expect((await runImage(engine, id, ['berth'])).output).toMatch(/^hello berth from app/);
    },
  );
});
