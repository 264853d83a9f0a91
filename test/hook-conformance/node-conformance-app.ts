/**
 * The Node SDK's conformance app: the commands and events of test/hook-conformance/README.md,
 * over stdin/stdout. The Java client has the same program (hook-sdk-java/src/conformance).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { CheckpointHooks, httpServerHook, silentHookLogger, type HookContext } from '@cryo/hook-sdk';

type Behaviour = 'ok' | 'throw' | 'hang' | { sleepMs: number };

interface Command {
  cmd: string;
  name?: string;
  priority?: number;
  timeoutMs?: number;
  before?: Behaviour;
  after?: Behaviour;
}

const hooks = new CheckpointHooks({ logger: silentHookLogger });
const unregister = new Map<string, () => void>();

function emit(event: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(event) + '\n');
}

function contextJson(context: HookContext): Record<string, unknown> {
  return {
    checkpointId: context.checkpointId,
    reason: context.reason,
    deadline: context.deadline === null ? null : context.deadline.toISOString(),
    restoreCount: context.restoreCount,
    outcome: context.outcome,
  };
}

function behave(name: string, phase: 'before' | 'after', behaviour: Behaviour = 'ok') {
  return async (context: HookContext): Promise<void> => {
    emit({ event: 'hook', phase, name, context: contextJson(context) });
    if (behaviour === 'throw') throw new Error(`${name} failed`);
    if (behaviour === 'hang') await new Promise(() => {});
    if (typeof behaviour === 'object') await new Promise((resolve) => setTimeout(resolve, behaviour.sleepMs));
  };
}

hooks.on('connected', (kind, message) => emit({ event: 'connected', kind, message }));
hooks.on('answered', (message) => emit({ event: 'answered', type: message.type, message }));
hooks.on('disconnected', (code, reason) => emit({ event: 'disconnected', code, reason }));
hooks.on('protocol-error', (message) => emit({ event: 'protocol-error', code: message.code, message: message.message }));

// The pending hang promises must not keep the app alive after exit is asked for.
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  void (async () => {
    const command = JSON.parse(line) as Command;
    switch (command.cmd) {
      case 'register': {
        const name = command.name ?? '';
        unregister.set(
          name,
          hooks.register({
            name,
            ...(command.priority !== undefined ? { priority: command.priority } : {}),
            ...(command.timeoutMs !== undefined ? { timeoutMs: command.timeoutMs } : {}),
            beforeCheckpoint: behave(name, 'before', command.before),
            afterRestore: behave(name, 'after', command.after),
          }),
        );
        break;
      }
      case 'listen': {
        // The SDK's own helper: closed before a checkpoint, listening again after unless superseded.
        const name = command.name ?? '';
        const server = createServer((_req, res) => res.end(name));
        let port = 0;
        server.on('listening', () => {
          port = (server.address() as AddressInfo).port;
          emit({ event: 'listener', name, listening: true, port });
        });
        server.on('close', () => emit({ event: 'listener', name, listening: false, port }));
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        unregister.set(name, hooks.register(httpServerHook(server, { name })));
        break;
      }
      case 'unregister':
        unregister.get(command.name ?? '')?.();
        break;
      case 'start':
        hooks.start();
        break;
      case 'stop':
        await hooks.stop();
        emit({ event: 'stopped' });
        break;
      case 'exit':
        emit({ event: 'ack', cmd: 'exit' });
        process.exit(0);
    }
    emit({ event: 'ack', cmd: command.cmd });
  })();
});
