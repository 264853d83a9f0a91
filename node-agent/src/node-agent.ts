/**
 * Assembles a running node agent from its configuration. So far that is the hook server fed by a
 * watch on this node's pods, plus /healthz, /readyz and /metrics. main.ts runs it as a process;
 * tests run it in-process.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { createLogger, loadKubeConfig, Metrics, type Logger } from '@cryo/common';
import type { NodeAgentConfig } from './config.ts';
import { HookServer } from './hooks/hook-server.ts';
import { NodePodWatcher } from './pods/node-pod-watcher.ts';
import { HookMetrics } from './hooks/hook-metrics.ts';

export interface RunningNodeAgent {
  port: number;
  hooks: HookServer;
  metrics: Metrics;
  stop(): Promise<void>;
}

export interface NodeAgentDeps {
  kubeConfig?: KubeConfig;
  logger?: Logger;
  host?: string;
}

export async function startNodeAgent(config: NodeAgentConfig, deps: NodeAgentDeps = {}): Promise<RunningNodeAgent> {
  const logger = deps.logger ?? createLogger('cryo-node-agent');
  const kubeConfig = deps.kubeConfig ?? loadKubeConfig(config.kubeconfig);
  const metrics = new Metrics();
  const hooks = new HookServer({
    hostHooksDir: config.hostHooksDir,
    socketMode: config.hookSocketMode,
    heartbeatIntervalMs: config.hookHeartbeatSeconds * 1000,
    logger: logger.child({ part: 'hooks' }),
    metrics: new HookMetrics(metrics),
  });
  const watcher = new NodePodWatcher({ kubeConfig, nodeName: config.nodeName, server: hooks, logger: logger.child({ part: 'pod-watch' }) });
  const http = createHealthServer(metrics, () => (watcher.hasSynced ? undefined : 'pod watch not synced yet'));
  await new Promise<void>((resolve) => http.listen(config.port, deps.host, resolve));
  const port = (http.address() as AddressInfo).port;
  try {
    await watcher.start();
  } catch (error) {
    await new Promise((resolve) => http.close(resolve));
    throw error;
  }
  logger.info({ node: config.nodeName, port, hostHooksDir: config.hostHooksDir }, 'node agent running');
  return {
    port,
    hooks,
    metrics,
    async stop() {
      await watcher.stop();
      await hooks.close();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}

function createHealthServer(metrics: Metrics, notReadyReason: () => string | undefined): Server {
  return createServer((req, res) => {
    const path = req.url?.split('?')[0];
    if (path === '/healthz') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    if (path === '/readyz') {
      const reason = notReadyReason();
      return void res.writeHead(reason === undefined ? 200 : 503, { 'content-type': 'text/plain' }).end(`${reason ?? 'ready'}\n`);
    }
    if (path === '/metrics') {
      metrics.render().then(
        ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
        () => res.writeHead(500).end(),
      );
      return undefined;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: /healthz, /readyz, /metrics\n');
    return undefined;
  });
}
