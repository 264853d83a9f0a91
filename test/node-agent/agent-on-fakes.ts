/**
 * The whole node agent (startNodeAgent) on node-a against the shared fake kube-apiserver and the
 * shared kubelet stand-in, with one running pod shop/orders-0 (container app, or those named) and a directory
 * store; for tests that set the kubelet's answers themselves (`checkpointAnswering`), so no lab
 * and no container is needed.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger, type Checkpoint, type Logger } from '@cryo/common';
import { readNodeAgentConfig, startNodeAgent, type RunningNodeAgent } from '@cryo/node-agent';
import { FakeKubeApiServer, FakeKubelet, waitFor } from '@cryo/test';

const TOKEN = 'node-agent-sa-token';

export interface AgentOnFakes {
  /** The test's own directory (removed by stop()). */
  dir: string;
  api: FakeKubeApiServer;
  kubelet: FakeKubelet;
  agent: RunningNodeAgent;
  /** --kubelet-checkpoints-dir */
  checkpointsDir: string;
  /** --directory */
  storeDir: string;
  /** The running pod checkpoints are taken of. */
  pod: { name: string; namespace: string; uid: string };
  /** Its containers (`app` unless the test names others). */
  containers: readonly string[];
  /** The kubelet answers `archivePath` for the next checkpoint of `name` (of orders-0); resolves with the Checkpoint's end state. */
  checkpointAnswering(name: string, archivePath: string): Promise<Checkpoint>;
  /** Resolves with the Checkpoint once Succeeded or Failed. */
  finished(name: string): Promise<Checkpoint>;
  /** Stops the agent, runs `meanwhile`, and starts a new one with the same flags (`agent` is the new one): a restart. */
  restartAgent(meanwhile?: () => Promise<void> | void): Promise<RunningNodeAgent>;
  stop(): Promise<void>;
}

/**
 * `extraFlags` come after the defaults (--directory-registry-address off among them: the view's
 * default port is the node's), so `--directory ''` leaves the agent without a default store.
 */
export async function startAgentOnFakes(dirPrefix: string, extraFlags: readonly string[] = [], options: { containers?: readonly string[]; logger?: Logger } = {}): Promise<AgentOnFakes> {
  const containers = options.containers ?? ['app'];
  const imageOf = (container: string) => (container === 'app' ? 'shop/orders:1' : `shop/${container}:1`);
  const dir = await mkdtemp(join(tmpdir(), dirPrefix));
  const checkpointsDir = join(dir, 'kubelet', 'checkpoints');
  const storeDir = join(dir, 'store');
  const pod = { name: 'orders-0', namespace: 'shop', uid: randomUUID() };
  const api = await FakeKubeApiServer.start();
  const kubelet = await FakeKubelet.start({ checkpointsDir, token: TOKEN });
  await writeFile(join(dir, 'token'), TOKEN);
  await writeFile(join(dir, 'kubelet-ca.crt'), kubelet.caPem);
  api.put({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: pod.name, namespace: pod.namespace, uid: pod.uid },
    spec: { nodeName: 'node-a', containers: containers.map((name) => ({ name, image: imageOf(name) })) },
    status: { phase: 'Running', containerStatuses: containers.map((name) => ({ name, ready: true, restartCount: 0, image: imageOf(name), imageID: '', state: { running: {} } })) },
  });
  const flags = [
    '--node-name', 'node-a', '--host-hooks-dir', join(dir, 'hooks'), '--port', '0',
    '--kubelet-url', kubelet.url, '--kubelet-ca-file', join(dir, 'kubelet-ca.crt'), '--token-file', join(dir, 'token'),
    '--kubelet-checkpoints-dir', checkpointsDir, '--directory', storeDir, '--directory-registry-address', 'off',
    ...extraFlags,
  ];
  const start = () => startNodeAgent(readNodeAgentConfig(flags, {}), { kubeConfig: api.kubeConfig(), logger: options.logger ?? silentLogger(), host: '127.0.0.1' });

  const fakes: AgentOnFakes = {
    dir,
    api,
    kubelet,
    agent: await start(),
    checkpointsDir,
    storeDir,
    pod,
    containers,
    checkpointAnswering(name, archivePath) {
      kubelet.failNext({ status: 200, body: JSON.stringify({ items: [archivePath] }) });
      api.put({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Checkpoint', metadata: { name, namespace: pod.namespace }, spec: { podName: pod.name } });
      return fakes.finished(name);
    },
    finished(name) {
      return waitFor(
        () => {
          const current: Checkpoint | undefined = api.get('cryo.dev/v1alpha1', 'checkpoints', pod.namespace, name);
          return current?.status?.phase === 'Succeeded' || current?.status?.phase === 'Failed' ? current : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 50, what: `Checkpoint ${name} to finish` },
      );
    },
    async restartAgent(meanwhile) {
      await fakes.agent.stop();
      await meanwhile?.();
      fakes.agent = await start();
      return fakes.agent;
    },
    async stop() {
      await fakes.agent.stop();
      await kubelet.close();
      await api.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return fakes;
}
