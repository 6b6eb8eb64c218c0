/**
 * The container state table (src/container/status.ts): which verbs each status accepts, and the
 * one error naming the current and the attempted state.
 */
import { describe, expect, it } from 'vitest';
import { StateError } from '../../src/errors.js';
import { CONTAINER_STATUSES } from '../../src/container/record.js';
import { ACTIVE_STATUSES, assertCan, can, isActive, nextStatus, stateError } from '../../src/container/status.js';

describe('container state table', () => {
  it('counts running, paused and restarting as active, and nothing else', () => {
    expect(CONTAINER_STATUSES.filter(isActive)).toEqual(['running', 'paused', 'restarting']);
    expect([...ACTIVE_STATUSES].sort()).toEqual(['paused', 'restarting', 'running']);
  });

  it('starts and removes only inactive containers, and stops and kills only active ones', () => {
    for (const s of CONTAINER_STATUSES) {
      expect(can('start', s)).toBe(!isActive(s));
      expect(can('remove', s)).toBe(!isActive(s));
      expect(can('stop', s)).toBe(isActive(s));
      expect(can('kill', s)).toBe(isActive(s));
    }
  });

  it('pauses only a running container, unpauses only a paused one, and execs only in a running one', () => {
    expect(CONTAINER_STATUSES.filter((s) => can('pause', s))).toEqual(['running']);
    expect(CONTAINER_STATUSES.filter((s) => can('unpause', s))).toEqual(['paused']);
    expect(CONTAINER_STATUSES.filter((s) => can('exec', s))).toEqual(['running']);
  });

  it('attaches before the start only to a created container, and attaches otherwise only to an active one', () => {
    expect(CONTAINER_STATUSES.filter((s) => can('preattach', s))).toEqual(['created']);
    expect(CONTAINER_STATUSES.filter((s) => can('attach', s))).toEqual(['running', 'paused', 'restarting']);
    expect(nextStatus('preattach')).toBeUndefined();
    expect(stateError('preattach', 'exited', 'abc')).toMatchObject({ code: 'INVALID_STATE', attempted: 'preattach' });
  });

  it('leads start to running, pause to paused, exit to exited and remove to removed', () => {
    expect(nextStatus('start')).toBe('running');
    expect(nextStatus('pause')).toBe('paused');
    expect(nextStatus('unpause')).toBe('running');
    expect(nextStatus('exit')).toBe('exited');
    expect(nextStatus('restart')).toBe('restarting');
    expect(nextStatus('remove')).toBe('removed');
    expect(nextStatus('kill')).toBeUndefined();
  });

  it('refuses with NOT_RUNNING when a verb needs a run the container does not have', () => {
    const e = stateError('exec', 'exited', "'web'");
    expect(e).toBeInstanceOf(StateError);
    expect(e).toMatchObject({ code: 'NOT_RUNNING', current: 'exited', attempted: 'exec' });
    expect(e.message).toBe("cannot exec in container 'web': it is exited; start it first");
  });

  it('refuses with INVALID_STATE, naming both states, when the container runs but not in the state the verb needs', () => {
    expect(stateError('exec', 'paused', "'web'")).toMatchObject({
      code: 'INVALID_STATE',
      current: 'paused',
      attempted: 'exec',
      message: "cannot exec in container 'web': it is paused; unpause it first",
    });
    expect(stateError('remove', 'running', 'abc')).toMatchObject({
      code: 'INVALID_STATE',
      message: 'cannot remove container abc: it is running; stop it first or use force',
    });
    expect(stateError('unpause', 'exited', 'abc')).toMatchObject({ code: 'INVALID_STATE' });
    expect(stateError('pause', 'paused', 'abc')).toMatchObject({ code: 'INVALID_STATE' });
  });

  it('assertCan throws the state error only for a refused verb', () => {
    expect(() => assertCan('kill', 'running', 'abc')).not.toThrow();
    expect(() => assertCan('kill', 'created', 'abc')).toThrow(
      expect.objectContaining({ code: 'NOT_RUNNING', current: 'created', attempted: 'kill' }) as Error,
    );
  });
});
