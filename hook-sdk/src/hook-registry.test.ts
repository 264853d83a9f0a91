import { describe, expect, it } from 'vitest';
import { HookRegistry, type HookContext } from './hook-registry.ts';

const before: HookContext = { checkpointId: 'ns/c', reason: 'test', deadline: new Date(Date.now() + 60_000), restoreCount: 0, outcome: null };
const after: HookContext = { ...before, outcome: 'resumed' };

function recorder() {
  const calls: string[] = [];
  const hook = (name: string, priority?: number) => ({
    name,
    ...(priority !== undefined ? { priority } : {}),
    beforeCheckpoint: () => void calls.push(`before ${name}`),
    afterRestore: () => void calls.push(`after ${name}`),
  });
  return { calls, hook };
}

describe('HookRegistry', () => {
  it('runs pre hooks in reverse registration order and post hooks in registration order, as CRaC', async () => {
    const registry = new HookRegistry();
    const { calls, hook } = recorder();
    for (const name of ['db', 'cache', 'http']) registry.register(hook(name));
    await registry.run('beforeCheckpoint', before);
    await registry.run('afterRestore', after);
    expect(calls).toEqual(['before http', 'before cache', 'before db', 'after db', 'after cache', 'after http']);
  });

  it('orders by priority first: a higher priority runs later before and earlier after', async () => {
    const registry = new HookRegistry();
    const { calls, hook } = recorder();
    registry.register(hook('logger', 10));
    registry.register(hook('db'));
    registry.register(hook('http', -1));
    await registry.run('beforeCheckpoint', before);
    await registry.run('afterRestore', after);
    expect(calls).toEqual(['before http', 'before db', 'before logger', 'after logger', 'after db', 'after http']);
  });

  it('runs every hook even when some throw, sync or async, and collects the errors', async () => {
    const registry = new HookRegistry();
    const ran: string[] = [];
    registry.register({ name: 'a', beforeCheckpoint: () => void ran.push('a') });
    registry.register({ name: 'sync-throw', beforeCheckpoint: () => { throw new Error('boom'); } });
    registry.register({ name: 'async-reject', beforeCheckpoint: () => Promise.reject(new Error('later boom')) });
    registry.register({ name: 'not-an-error', beforeCheckpoint: () => { throw 'a string'; } }); // eslint-disable-line @typescript-eslint/only-throw-error
    const result = await registry.run('beforeCheckpoint', before);
    expect(ran).toEqual(['a']);
    expect(result.failures.map((f) => [f.hook, String(f.error), f.timedOut])).toEqual([
      ['not-an-error', 'a string', false],
      ['async-reject', 'Error: later boom', false],
      ['sync-throw', 'Error: boom', false],
    ]);
  });

  it('gives each hook its own timeout, and never past the deadline before a checkpoint', async () => {
    const registry = new HookRegistry();
    registry.register({ name: 'slow', timeoutMs: 30, beforeCheckpoint: () => new Promise((r) => setTimeout(r, 500)) });
    registry.register({ name: 'fast', timeoutMs: 5_000, beforeCheckpoint: () => new Promise((r) => setTimeout(r, 5)) });
    const started = performance.now();
    const result = await registry.run('beforeCheckpoint', before);
    expect(result.failures).toMatchObject([{ hook: 'slow', timedOut: true, error: { message: 'hook "slow" timed out after 30 ms' } }]);
    expect(performance.now() - started).toBeLessThan(400);

    const tight = new HookRegistry();
    tight.register({ name: 'long', timeoutMs: 10_000, beforeCheckpoint: () => new Promise((r) => setTimeout(r, 1_000)) });
    const near = await tight.run('beforeCheckpoint', { ...before, deadline: new Date(Date.now() + 50) });
    expect(near.failures).toMatchObject([{ hook: 'long', timedOut: true }]);
  });

  it('hands each hook a frozen copy of the context', async () => {
    const registry = new HookRegistry();
    let seen: HookContext | undefined;
    registry.register({ afterRestore: (ctx) => void (seen = ctx) });
    await registry.run('afterRestore', { ...after, outcome: 'restored', restoreCount: 3 });
    expect(seen).toMatchObject({ outcome: 'restored', restoreCount: 3, checkpointId: 'ns/c' });
    expect(Object.isFrozen(seen)).toBe(true);
  });

  it('unregisters, and defers changes made during a phase to its end', async () => {
    const registry = new HookRegistry();
    const { calls, hook } = recorder();
    let lateRegistered = false;
    const removeA = registry.register(hook('a'));
    registry.register({
      name: 'registers-another',
      beforeCheckpoint: () => {
        registry.register(hook('late'));
        lateRegistered = true;
        removeA();
      },
    });
    await registry.run('beforeCheckpoint', before);
    expect(lateRegistered).toBe(true);
    expect(calls).toEqual(['before a']); // a was still there, late not yet
    await registry.run('afterRestore', after);
    expect(calls).toEqual(['before a', 'after late']);
    expect(registry.size).toBe(2);
  });

  it.each([
    [{}, /needs beforeCheckpoint, afterRestore or both/],
    [{ beforeCheckpoint: 'nope' }, /beforeCheckpoint must be a function/],
    [{ afterRestore: () => {}, timeoutMs: 0 }, /timeoutMs must be a positive number/],
    [{ afterRestore: () => {}, priority: Number.NaN }, /priority must be a finite number/],
  ])('refuses a malformed hook %#', (definition, message) => {
    expect(() => new HookRegistry().register(definition as never)).toThrow(message);
  });
});
