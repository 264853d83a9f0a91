/**
 * One benchmark process: the SDK with a pre-checkpoint hook that takes HOOK_MS of real time, so
 * the benchmark can subtract the hooks' own work it reports from the round trip.
 */
import { createCheckpointHooks, silentHookLogger } from '@cryo/hook-sdk';

const hookMs = Number(process.env.HOOK_MS ?? 2);
const work = hookMs > 0 ? () => new Promise<void>((resolve) => setTimeout(resolve, hookMs)) : () => {};
const hooks = createCheckpointHooks({ logger: silentHookLogger });
hooks.register({ name: 'work', beforeCheckpoint: work, afterRestore: () => {} });
hooks.once('connected', () => process.stdout.write('connected\n'));
hooks.start();
// Stay alive until the benchmark ends us.
setInterval(() => {}, 60_000);
