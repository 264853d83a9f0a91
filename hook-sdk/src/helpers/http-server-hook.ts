/**
 * A hook that takes an http(s) server off the network before a checkpoint and puts it back after:
 * CRIU cannot dump established TCP connections, so the server stops listening, lets in-flight
 * requests finish (up to `drainTimeoutMs`), closes idle and keep-alive connections, and after the
 * checkpoint listens again on the address it had, except when the outcome is `superseded`: then
 * a copy serves from the checkpoint elsewhere and this server stays closed (should a later
 * checkpoint of this process end otherwise, it listens again then).
 */
import type { Server } from 'node:http';
import type { HookDefinition } from '../hook-registry.ts';

export interface HttpServerHookOptions {
  name?: string;
  priority?: number;
  /** How long in-flight requests may take before their connections are cut. Default 5 s. */
  drainTimeoutMs?: number;
  timeoutMs?: number;
}

type ListenAddress = { port: number; host: string } | { path: string };

export function httpServerHook(server: Server, options: HttpServerHookOptions = {}): HookDefinition {
  const drainTimeoutMs = options.drainTimeoutMs ?? 5_000;
  let address: ListenAddress | null = null;
  return {
    name: options.name ?? 'http-server',
    ...(options.priority !== undefined ? { priority: options.priority } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    beforeCheckpoint: async () => {
      const current = server.address();
      if (current === null) return; // not listening: nothing to take down or bring back
      address = typeof current === 'string' ? { path: current } : { port: current.port, host: current.address };
      await new Promise<void>((resolve, reject) => {
        const cut = setTimeout(() => server.closeAllConnections(), drainTimeoutMs);
        // A keep-alive connection turns idle when its in-flight response ends, and would then hold
        // close() up until its keep-alive timeout: close idle ones as they appear.
        const sweep = setInterval(() => server.closeIdleConnections(), 10);
        server.close((error) => {
          clearTimeout(cut);
          clearInterval(sweep);
          if (error) reject(error);
          else resolve();
        });
        server.closeIdleConnections();
      });
    },
    afterRestore: async (context) => {
      if (context.outcome === 'superseded' || address === null || server.listening) return;
      const target = address;
      await new Promise<void>((resolve, reject) => {
        const onError = (error: Error) => reject(error);
        server.once('error', onError);
        const onListening = () => {
          server.off('error', onError);
          resolve();
        };
        if ('path' in target) server.listen(target.path, onListening);
        else server.listen(target.port, target.host, onListening);
      });
      address = null;
    },
  };
}
