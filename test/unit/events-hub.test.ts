import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { EventHub } from '../../src/events/event-hub.js';
import { EventLog } from '../../src/events/event-log.js';
import type { BerthEvent } from '../../src/events/types.js';
import { tempDir } from '../helpers/tmp.js';

async function until(cond: () => boolean, ms = 1000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await sleep(2);
}

describe('EventHub', () => {
  it('emits new events by type and as "event", once each, while it has listeners', async () => {
    const log = new EventLog(tempDir('hub'));
    await log.append({ type: 'container', action: 'old', id: 'c0' });
    const hub = new EventHub(log);
    expect(hub.following).toBe(false);
    const containers: string[] = [];
    const all: string[] = [];
    const onContainer = (e: BerthEvent): void => void containers.push(e.action);
    const onEvent = (e: BerthEvent): void => void all.push(`${e.type}:${e.action}`);
    hub.on('container', onContainer);
    hub.on('event', onEvent);
    expect(hub.following).toBe(true);
    await log.append({ type: 'container', action: 'start', id: 'c1' });
    await log.append({ type: 'image', action: 'pull', id: 'i1' });
    await log.append({ type: 'container', action: 'die', id: 'c1' });
    await until(() => all.length >= 3);
    await sleep(20);
    expect(containers).toEqual(['start', 'die']);
    expect(all).toEqual(['container:start', 'image:pull', 'container:die']);
    hub.off('container', onContainer);
    expect(hub.following).toBe(true);
    hub.removeListener('event', onEvent);
    expect(hub.following).toBe(false);
    await log.append({ type: 'container', action: 'destroy', id: 'c1' });
    await sleep(30);
    expect(containers).toEqual(['start', 'die']);
  });

  it('stops after the last once-listener fired, and error listeners alone do not start it', async () => {
    const log = new EventLog(tempDir('hub'));
    const hub = new EventHub(log);
    hub.on('error', () => {});
    expect(hub.following).toBe(false);
    let got: BerthEvent | undefined;
    hub.once('volume', (e) => {
      got = e;
    });
    expect(hub.following).toBe(true);
    await log.append({ type: 'volume', action: 'create', id: 'data' });
    await until(() => got !== undefined);
    expect(got).toMatchObject({ type: 'volume', action: 'create', id: 'data', attributes: {} });
    expect(hub.following).toBe(false);
    hub.addListener('network', () => {});
    expect(hub.following).toBe(true);
    hub.removeAllListeners();
    expect(hub.following).toBe(false);
  });

  it('sees events written through another EventLog of the same root', async () => {
    const root = tempDir('hub');
    const hub = new EventHub(new EventLog(root));
    const seen: string[] = [];
    hub.on('network', (e) => seen.push(e.id));
    await new EventLog(root).append({ type: 'network', action: 'create', id: 'backend' });
    await until(() => seen.length > 0);
    expect(seen).toEqual(['backend']);
    hub.removeAllListeners();
  });
});
