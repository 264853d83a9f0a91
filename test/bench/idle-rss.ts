/**
 * npm run bench:rss — the resident memory of the webhook, the node agent and the controller at
 * rest, the figure their manifests' memory requests are set from (manifests/*-deployment.yaml,
 * manifests/node-agent-daemonset.yaml). No root, lab or cluster; about 70 s.
 *
 * Each runs as its image runs it (the Node flags and env of its Dockerfile: node-runtime.ts),
 * as a child process against the shared fake kube-apiserver (and, for the agent, the kubelet
 * stand-in), on loopback. Once all three are ready, VmRSS and VmHWM (the peak so far) are read
 * from /proc/<pid>/status after 5, 30 and 60 s. RSS counts the Node binary's mapped text too,
 * which the kubelet's working set may not (the figures in the manifests say which they are).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseYaml } from 'yaml';
import { CONTROLLER_ENV, CONTROLLER_NODE_FLAGS } from '../../controller/src/node-runtime.ts';
import { NODE_AGENT_ENV, NODE_AGENT_NODE_FLAGS } from '../../node-agent/src/node-runtime.ts';
import { FakeKubeApiServer, FakeKubelet, freePort, REPO_ROOT, waitFor } from '@cryo/test';

const SAMPLE_AT_SECONDS = [5, 30, 60];

function memoryMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) / 1024;
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}

const dir = mkdtempSync(path.join(tmpdir(), 'cryo-bench-rss-'));
const api = await FakeKubeApiServer.start();
const kubelet = await FakeKubelet.start({ checkpointsDir: path.join(dir, 'kubelet-checkpoints'), token: 'agent-token' });
const children: Record<string, ChildProcess> = {};
try {
  // What the webhook reads and writes at start: its configuration (the caBundle) and its TLS Secret.
  api.put(parseYaml(readFileSync(path.join(REPO_ROOT, 'manifests/mutating-webhook.yaml'), 'utf8')));
  api.put({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-a' } });
  const kubeconfig = api.writeKubeconfigFile(dir);
  writeFileSync(path.join(dir, 'token'), 'agent-token');
  writeFileSync(path.join(dir, 'kubelet-ca.crt'), kubelet.caPem);
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, KUBECONFIG: kubeconfig, NODE_ENV: 'production', LOG_LEVEL: 'warn' };
  const [webhookPort, agentPort, controllerPort] = [await freePort(), await freePort(), await freePort()];

  children.webhook = spawn(process.execPath, [path.join(REPO_ROOT, 'webhook/src/main.ts')], {
    env: { ...env, CRYO_PORT: String(webhookPort), POD_NAMESPACE: 'cryo-system' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children['node-agent'] = spawn(
    process.execPath,
    [
      ...NODE_AGENT_NODE_FLAGS, path.join(REPO_ROOT, 'node-agent/src/main.ts'),
      '--node-name', 'node-a', '--port', String(agentPort), '--host-hooks-dir', path.join(dir, 'hooks'),
      '--kubelet-url', kubelet.url, '--kubelet-ca-file', path.join(dir, 'kubelet-ca.crt'), '--token-file', path.join(dir, 'token'),
      '--kubelet-checkpoints-dir', path.join(dir, 'kubelet-checkpoints'),
      // The default store manifests/ installs, with its registry view (on a free port here).
      '--directory', path.join(dir, 'store'), '--directory-registry-address', '127.0.0.1:0',
      '--containerd-config', path.join(dir, 'no-containerd.toml'), '--crio-config', path.join(dir, 'no-crio.conf'), '--crio-config-dir', path.join(dir, 'no-crio.d'),
    ],
    { env: { ...env, ...NODE_AGENT_ENV, POD_NAMESPACE: 'cryo-node' }, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  children.controller = spawn(process.execPath, [...CONTROLLER_NODE_FLAGS, path.join(REPO_ROOT, 'controller/src/main.ts'), '--port', String(controllerPort)], {
    env: { ...env, ...CONTROLLER_ENV, POD_NAMESPACE: 'cryo-system', POD_NAME: 'cryo-controller-0' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });

  const ready = async (port: number) => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200;
  await waitFor(() => ready(agentPort), { what: 'the node agent to be ready', timeoutMs: 60_000 });
  await waitFor(() => ready(controllerPort), { what: 'the controller to be ready', timeoutMs: 60_000 });
  await waitFor(() => api.get('v1', 'secrets', 'cryo-system', 'cryo-webhook-tls') !== undefined, { what: 'the webhook to write its TLS Secret', timeoutMs: 60_000 });

  console.log('idle memory (MiB): VmRSS / VmHWM');
  let waited = 0;
  for (const at of SAMPLE_AT_SECONDS) {
    await sleep((at - waited) * 1000);
    waited = at;
    const row = Object.entries(children).map(([name, child]) => {
      const { rss, peak } = memoryMiB(child.pid!);
      return `${name} ${rss.toFixed(0)} / ${peak.toFixed(0)}`;
    });
    console.log(`  ${String(at).padStart(2)} s: ${row.join('   ')}`);
  }
} finally {
  for (const child of Object.values(children)) child.kill('SIGKILL');
  await kubelet.close();
  await api.stop();
  rmSync(dir, { recursive: true, force: true });
}
