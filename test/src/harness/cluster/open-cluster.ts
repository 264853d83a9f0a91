/**
 * The entry to the real single-node cluster scripts/cluster/cluster.sh runs (docs/cluster.md):
 *
 *   const opened = await openCluster('containerd');   // Cluster, or { skip } naming the fix
 *   describe.skipIf('skip' in opened)('...', () => { ... });
 *
 * openCluster() only checks; up() starts the cluster (seconds when provisioned), down() stops it.
 * openCluster(runtime, { nodes: 2 }) adds node-2, a second node on this machine (docs/cluster.md).
 * up() waits for the cluster's lock (holdClusterLock) and down() gives it back, so that test files
 * in parallel workers take turns.
 * Cryo goes on it as users install it: installCryo() builds the images from the Dockerfiles and
 * applies the test overlay (test/cluster/overlay) with kubectl apply -k.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { waitFor } from '../wait-for.ts';
import { runCommand, type CommandOptions, type CommandResult } from '../lab/run-command.ts';
import { holdClusterLock } from './cluster-lock.ts';
import { clusterSettings, clusterUnavailable, type ClusterRuntime, type ClusterSettings } from './cluster-settings.ts';

export interface OpenClusterOptions {
  /** 2: node-2 beside node-1 (cluster.sh up --nodes 2). */
  nodes?: 1 | 2;
}

export interface Cluster {
  runtime: ClusterRuntime;
  settings: ClusterSettings;
  nodes: 1 | 2;
  up(): Promise<void>;
  down(): Promise<void>;
  /** kubectl as cluster-admin; rejects with kubectl's own words when it fails. */
  kubectl(args: string[], options?: CommandOptions): Promise<string>;
  /** kubectl as cluster-admin, whatever its exit code. */
  kubectlResult(args: string[], options?: CommandOptions): Promise<CommandResult>;
  /** kubectl as whoever `token` names (a service account's, say), whatever its exit code. */
  kubectlWithToken(token: string, args: string[], options?: CommandOptions): Promise<CommandResult>;
  /**
   * kubectl as cluster-admin impersonating `user` with `extra` (e.g. the node name a pod-bound
   * token would carry, which no token of another node can), whatever its exit code.
   */
  kubectlAs(user: { name: string; extra?: Record<string, string[]> }, args: string[], options?: CommandOptions): Promise<CommandResult>;
  /**
   * `kubectl cryo ARGS` as cluster-admin, whatever its exit code: kubectl finds the plugin on PATH
   * as it does after `npm i -g` (a kubectl-cryo shim running kubectl-cryo/src/main.ts).
   */
  kubectlCryo(args: string[], options?: CommandOptions): Promise<CommandResult>;
  /** What a reboot does to node-2's pods (cluster.sh reboot-node): every container killed, kubelet and runtime restarted; resolves once it is Ready. */
  rebootNode(node: string): Promise<void>;
  /** `kubectl get -o json` of what the arguments name. */
  get<T = Record<string, unknown>>(args: string[]): Promise<T>;
  /** `kubectl apply` of objects given as JSON. */
  apply(...objects: object[]): Promise<void>;
  /** Deletes namespace `name` if a previous run left it, creates it afresh, and waits for its default ServiceAccount (pods need it). */
  freshNamespace(name: string): Promise<void>;
  /** Runs a command inside the node's mount namespace (the root's tools, the host's network). */
  exec(argv: string[], options?: CommandOptions): Promise<CommandResult>;
  /** exec on the node so named: node-1's as exec, node-2's in its own mount and network namespaces. */
  execOn(node: string, argv: string[], options?: CommandOptions): Promise<CommandResult>;
  /** Builds the webhook, node-agent and controller images and installs Cryo from its manifests; waits for the rollouts, the caBundle and the CRDs. */
  installCryo(): Promise<{ webhook: string; nodeAgent: string; controller: string }>;
  /** An image of `dir` (main.ts and its node_modules) on the Node base image, pinned by digest. */
  appImage(name: string, dir: string): Promise<string>;
  /** An image of `classes` (compiled Java classes, at /app/classes) on the JVM base image (OpenJDK 21), `java` as entrypoint, pinned by digest. */
  jvmAppImage(name: string, classes: string): Promise<string>;
  /** The guard's packet counters (scripts/cluster/cluster.sh guard_rules). */
  guardCounters(): Promise<Record<string, number>>;
}

function failed(argv: string[], result: CommandResult): Error {
  return new Error(`${argv.join(' ')} exited ${result.code}:\n${result.stderr}${result.stdout}`.trimEnd());
}

let builtImages: Promise<Record<string, string>> | undefined;

export function openCluster(runtime: ClusterRuntime, { nodes = 1 }: OpenClusterOptions = {}, settings: ClusterSettings = clusterSettings()): Cluster | { skip: string } {
  const unavailable = clusterUnavailable(settings, runtime);
  if (unavailable !== undefined) return { skip: unavailable };
  let releaseLock: (() => void) | undefined;

  const script = async (args: string[], options: CommandOptions = {}): Promise<string> => {
    const argv = ['bash', settings.script, ...args];
    const result = await runCommand(argv, { timeoutMs: 300_000, ...options });
    if (result.code !== 0) throw failed(argv, result);
    return result.stdout;
  };
  const kubectlResult = (args: string[], options: CommandOptions = {}): Promise<CommandResult> =>
    runCommand([join(settings.clusterDir, 'bin/kubectl'), '--kubeconfig', join(settings.clusterDir, 'state/admin.kubeconfig'), ...args], { timeoutMs: 60_000, ...options });
  const kubectl = async (args: string[], options: CommandOptions = {}): Promise<string> => {
    const result = await kubectlResult(args, options);
    if (result.code !== 0) throw failed(['kubectl', ...args], result);
    return result.stdout;
  };

  const envNone = ['env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin'];
  const cluster: Cluster = {
    runtime,
    settings,
    nodes,
    async up() {
      // Another test file's cluster may be up: wait for its turn (within a beforeAll's time).
      releaseLock ??= await holdClusterLock(join(settings.clusterDir, 'tests.lock'), 840_000);
      await script(['up', '--runtime', runtime, '--nodes', String(nodes)]);
    },
    async down() {
      // Not ours to take down: up() never got the lock (another file's cluster runs).
      if (releaseLock === undefined) return;
      try {
        await script(['down']);
      } finally {
        releaseLock?.();
        releaseLock = undefined;
      }
    },
    kubectl,
    kubectlResult,
    kubectlWithToken: (token, args, options = {}) =>
      runCommand([join(settings.clusterDir, 'bin/kubectl'), '--kubeconfig', '/dev/null', '--server', `https://${settings.nodeIp}:6443`,
        '--certificate-authority', join(settings.clusterDir, 'state/pki/ca.crt'), '--token', token, ...args], { timeoutMs: 60_000, ...options }),
    async kubectlAs(user, args, options = {}) {
      // kubectl has no flag for an impersonated user's extra; a kubeconfig has (as-user-extra).
      const config = JSON.parse(await kubectl(['config', 'view', '--raw', '-o', 'json'])) as { users: Array<{ user: Record<string, unknown> }> };
      for (const entry of config.users) Object.assign(entry.user, { as: user.name, 'as-user-extra': user.extra ?? {} });
      const file = join(settings.repoRoot, '.tmp', `kubeconfig-as-${randomBytes(6).toString('hex')}.json`);
      await mkdir(join(settings.repoRoot, '.tmp'), { recursive: true });
      await writeFile(file, JSON.stringify(config), { mode: 0o600 });
      try {
        return await runCommand([join(settings.clusterDir, 'bin/kubectl'), '--kubeconfig', file, ...args], { timeoutMs: 60_000, ...options });
      } finally {
        await rm(file, { force: true });
      }
    },
    async kubectlCryo(args, options = {}) {
      // The shim npm would write for the package's bin, with this Node.
      const bin = join(settings.repoRoot, '.tmp', 'kubectl-plugins');
      await mkdir(bin, { recursive: true });
      await writeFile(join(bin, 'kubectl-cryo'), `#!/bin/sh\nexec '${process.execPath}' '${join(settings.repoRoot, 'kubectl-cryo/src/main.ts')}' "$@"\n`, { mode: 0o755 });
      // kubectl passes no flags of its own to a plugin (and finds none after one): KUBECONFIG says where.
      return runCommand([join(settings.clusterDir, 'bin/kubectl'), 'cryo', ...args], {
        timeoutMs: 300_000,
        ...options,
        env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, KUBECONFIG: join(settings.clusterDir, 'state/admin.kubeconfig'), ...options.env },
      });
    },
    async rebootNode(node) {
      await script(['reboot-node', node], { timeoutMs: 240_000 });
    },
    get: async <T>(args: string[]) => JSON.parse(await kubectl(['get', ...args, '-o', 'json'])) as T,
    apply: async (...objects: object[]) => void (await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }) })),
    async freshNamespace(name) {
      await kubectl(['delete', 'namespace', name, '--ignore-not-found', '--wait=true'], { timeoutMs: 120_000 });
      await kubectl(['create', 'namespace', name]);
      await waitFor(async () => (await kubectlResult(['-n', name, 'get', 'serviceaccount', 'default'])).code === 0, { timeoutMs: 30_000, intervalMs: 250, what: 'the default ServiceAccount' });
    },
    exec: (argv, options) => runCommand(['nsenter', `--mount=${settings.nsPath}`, '--', ...envNone, ...argv], options),
    execOn: (node, argv, options) =>
      node === settings.secondNode.name
        ? runCommand(['nsenter', `--mount=${settings.secondNode.nsPath}`, `--net=${settings.secondNode.netnsPath}`, '--', ...envNone, ...argv], options)
        : cluster.exec(argv, options),
    async installCryo() {
      // Built once per test process: the same sources make the same images on either runtime.
      builtImages ??= script(['images'], { timeoutMs: 600_000 }).then((out) => Object.fromEntries(out.trim().split('\n').map((line) => line.split(' ') as [string, string])));
      const built = await builtImages;
      const digest = (component: string): string => {
        const reference = built[component];
        if (reference === undefined) throw new Error(`cluster.sh images built no ${component} image`);
        return reference.slice(reference.indexOf('@') + 1);
      };
      // A kustomization of our own that pins the overlay's images by digest. kustomize only takes
      // relative paths to other kustomizations, so it lives inside the repository (.tmp/).
      const dir = join(settings.repoRoot, '.tmp/cluster-install');
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      const overlay = relative(dir, join(settings.repoRoot, 'test/cluster/overlay'));
      await writeFile(
        join(dir, 'kustomization.yaml'),
        [
          'apiVersion: kustomize.config.k8s.io/v1beta1',
          'kind: Kustomization',
          `resources: [${overlay}]`,
          'images:',
          `  - { name: ${settings.registry}/cryo/webhook, digest: "${digest('webhook')}" }`,
          `  - { name: ${settings.registry}/cryo/node-agent, digest: "${digest('node-agent')}" }`,
          `  - { name: ${settings.registry}/cryo/controller, digest: "${digest('controller')}" }`,
          '',
        ].join('\n'),
      );
      await kubectl(['apply', '-k', dir]);
      await kubectl(['-n', 'cryo-system', 'rollout', 'status', 'deploy/cryo-webhook', '--timeout=120s'], { timeoutMs: 130_000 });
      await kubectl(['-n', 'cryo-node', 'rollout', 'status', 'ds/cryo-node-agent', '--timeout=120s'], { timeoutMs: 130_000 });
      await kubectl(['-n', 'cryo-system', 'rollout', 'status', 'deploy/cryo-controller', '--timeout=120s'], { timeoutMs: 130_000 });
      // The apiserver must reach the webhook through its Service before pods are admitted: the
      // caBundle is written by the webhook itself once it runs.
      await waitFor(
        async () => {
          const config = await cluster.get<{ webhooks: { clientConfig: { caBundle?: string } }[] }>(['mutatingwebhookconfiguration', 'cryo-webhook']);
          return config.webhooks.every((w) => (w.clientConfig.caBundle ?? '') !== '');
        },
        { timeoutMs: 60_000, intervalMs: 500, what: 'the webhook to write its caBundle' },
      );
      // Just after the CRDs are applied their storage may still be initializing (429), which the
      // node agent does not retry yet when it looks up the default storage class.
      await waitFor(async () => (await kubectlResult(['get', 'checkpointstorageclasses,checkpoints,migrations,checkpointschedules', '-A'])).code === 0,
        { timeoutMs: 60_000, intervalMs: 500, what: "the CRDs' storage" });
      return { webhook: built.webhook, nodeAgent: built['node-agent'], controller: built.controller };
    },
    appImage: async (name, dir) => (await script(['app-image', name, dir], { timeoutMs: 300_000 })).trim().split('\n').at(-1)!,
    jvmAppImage: async (name, classes) => (await script(['jvm-app-image', name, classes], { timeoutMs: 300_000 })).trim().split('\n').at(-1)!,
    async guardCounters() {
      const result = await cluster.exec(['nft', '--json', 'list', 'counters', 'table', 'inet', 'cryo_cluster_guard']);
      if (result.code !== 0) throw failed(['nft', 'list', 'counters'], result);
      const parsed = JSON.parse(result.stdout) as { nftables: { counter?: { name: string; packets: number } }[] };
      return Object.fromEntries(parsed.nftables.flatMap((entry) => (entry.counter ? [[entry.counter.name, entry.counter.packets]] : [])));
    },
  };
  return cluster;
}
