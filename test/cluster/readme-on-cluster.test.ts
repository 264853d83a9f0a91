/**
 * The README's path for a new user, followed on the real cluster (containerd) as it is written:
 * the commands are read out of README.md and run by sh, so a README that changes is what runs.
 *
 *   1. Build and push the images   `npm run images -- --registry <your-registry>/cryo`
 *   2. Let the nodes restore       (the cluster's containerd has the hosts.toml for 127.0.0.1:5051)
 *   3. Apply                       `kubectl apply -k manifests/`, the three rollouts
 *   4. First checkpoint and restore   the five commands, with docs/examples/
 *   then a schedule of docs/examples/counter-schedule.yaml, and Uninstall.
 *
 * What differs from a user's machine, and only that: the registry is the cluster's own
 * (127.0.0.1:5000); the builder is the cluster root's buildah (cluster.sh image-builder puts a
 * `buildah` that runs it on PATH) building on the offline Node base image (--base-image), since
 * nothing here reaches a public registry; the Kustomization `npm run images` writes, and the
 * manifests applied and deleted, are a copy in .tmp/, so the repository stays as it was; the
 * commands run in a namespace of their own (the kubeconfig's context names it); and docs/examples/
 * are a copy naming the cluster registry's busybox instead of busybox:1.37 (docker.io's): nothing
 * here may reach docker.io, and no mirror would do, since containerd 2.1 pulls a checkpoint's base
 * image again at every restore, by name@digest, with its default resolver, which reads no
 * hosts.toml (README.md, "Prerequisites").
 */
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCluster, readmeCommands, runCommand, waitFor, type Cluster, type CommandResult } from '@cryo/test';

const NS = 'cryo-readme';

interface CheckpointObject {
  metadata: { name: string; labels?: Record<string, string> };
  status?: { phase?: string; storage?: { type: string }; containers?: { name: string; restoreReference: string }[]; conditions?: { type: string; status: string }[] };
}

const opened = openCluster('containerd');
describe.skipIf('skip' in opened)("the README, followed on a real node (containerd)", () => {
  const cluster = opened as Cluster;
  const settings = cluster.settings;
  const work = join(settings?.repoRoot ?? '', '.tmp/readme-on-cluster');
  const manifests = join(work, 'manifests');
  const examples = join(work, 'examples');
  const kubeconfig = join(work, 'kubeconfig');
  let builder: { path: string; baseImage: string };

  /** A README command line as a user runs it from the repository root, with the substitutions above. */
  const sh = (line: string, timeoutMs = 300_000): Promise<CommandResult> =>
    runCommand(['sh', '-c', line.replaceAll(' manifests/', ` ${manifests}/`).replaceAll(' docs/examples/', ` ${examples}/`)], {
      cwd: settings.repoRoot,
      timeoutMs,
      env: { PATH: `${join(settings.clusterDir, 'bin')}:${builder.path}:${process.env.PATH ?? '/usr/bin:/bin'}`, KUBECONFIG: kubeconfig, HOME: process.env.HOME ?? '/root' },
    });
  const shOk = async (line: string, timeoutMs?: number): Promise<string> => {
    const result = await sh(line, timeoutMs);
    if (result.code !== 0) throw new Error(`\`${line}\` exited ${result.code}:\n${result.stderr}${result.stdout}`);
    return result.stdout;
  };
  const checkpoint = (name: string) => cluster.get<CheckpointObject>(['-n', NS, 'checkpoint', name]);
  /** The archives and files of `namespace` in the node's default store, /var/lib/cryo/checkpoints. */
  const storedFiles = async (): Promise<string[]> => {
    const found = await cluster.exec(['find', '/var/lib/cryo/checkpoints', '-path', `*${NS}*`, '-type', 'f']);
    return found.stdout.split('\n').filter((line) => line !== '');
  };

  beforeAll(async () => {
    await cluster.up();
    await rm(work, { recursive: true, force: true });
    await mkdir(work, { recursive: true });
    await cp(join(settings.repoRoot, 'manifests'), manifests, { recursive: true });
    await mkdir(examples);
    for (const file of await readdir(join(settings.repoRoot, 'docs/examples'))) {
      const text = await readFile(join(settings.repoRoot, 'docs/examples', file), 'utf8');
      const copy = text.replaceAll('image: busybox:1.37', `image: ${settings.registry}/cryo-test/busybox:1`);
      // Any other image would be pulled from outside: stop before a pod names it.
      const outside = /image: (?!127\.0\.0\.1:)\S+/.exec(copy);
      if (outside !== null) throw new Error(`docs/examples/${file} names "${outside[0]}", which this test does not replace with an image of the cluster's registry`);
      await writeFile(join(examples, file), copy);
    }
    await writeFile(kubeconfig, await cluster.kubectl(['config', 'view', '--raw', '-o', 'json']), { mode: 0o600 });
    await runCommand([join(settings.clusterDir, 'bin/kubectl'), '--kubeconfig', kubeconfig, 'config', 'set-context', '--current', `--namespace=${NS}`]);
    await cluster.freshNamespace(NS);
    const [path, baseImage] = (await runCommand(['bash', settings.script, 'image-builder'])).stdout.trim().split('\n');
    builder = { path, baseImage };
  }, 900_000);

  afterAll(async () => {
    if (process.env.CRYO_CLUSTER_KEEP === '1') return;
    await cluster.kubectl(['delete', 'namespace', NS, '--wait=false']).catch(() => {});
    await cluster.down();
  }, 300_000);

  it('1. builds and pushes the images with `npm run images`, which pins them by digest in the Kustomization', async () => {
    const commands = readmeCommands('### 1. Build and push the images');
    expect(commands).toEqual(['npm ci', 'npm run images -- --registry <your-registry>/cryo']);
    // npm ci ran before any test could; the builder and its base image are this machine's.
    const images = commands[1].replace('<your-registry>', settings.registry) +
      ` --builder buildah --base-image ${builder.baseImage} --kustomization ${manifests}/Kustomization`;
    const printed = await shOk(images, 900_000);
    const kustomization = await readFile(join(manifests, 'Kustomization'), 'utf8');
    for (const component of ['webhook', 'node-agent', 'controller']) {
      const digest = new RegExp(`^${component} ${settings.registry}/cryo/${component}@(sha256:[0-9a-f]{64})$`, 'm').exec(printed)?.[1];
      expect(digest, `npm run images printed:\n${printed}`).toBeDefined();
      expect(kustomization).toContain(`- name: cryo.invalid/${component}\n    newName: ${settings.registry}/cryo/${component}\n    digest: ${digest}\n`);
    }
  }, 900_000);

  it('2. needs of the node only what the README says: plain HTTP to the node agent on 127.0.0.1:5051', async () => {
    const hosts = await cluster.exec(['cat', '/etc/containerd/certs.d/127.0.0.1:5051/hosts.toml']);
    expect(hosts.stdout).toContain('server = "http://127.0.0.1:5051"');
  }, 30_000);

  it('3. applies with kubectl apply -k, and the three rollouts finish', async () => {
    const commands = readmeCommands('### 3. Apply');
    expect(commands[0]).toBe('kubectl apply -k manifests/');
    expect(commands).toHaveLength(4);
    for (const line of commands) await shOk(line.includes('rollout status') ? `${line} --timeout=180s` : line, 200_000);
    // The webhook writes its own caBundle once it runs; pods are admitted through it after that.
    await waitFor(
      async () => {
        const config = await cluster.get<{ webhooks: { clientConfig: { caBundle?: string } }[] }>(['mutatingwebhookconfiguration', 'cryo-webhook']);
        return config.webhooks.every((w) => (w.clientConfig.caBundle ?? '') !== '');
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'the webhook to write its caBundle' },
    );
    // The node agent labels the node that restores; restoring pods are scheduled only there.
    await waitFor(async () => (await cluster.get<{ metadata: { labels: Record<string, string> } }>(['node', 'node-1'])).metadata.labels['cryo.dev/restore-runtime'] === 'containerd',
      { timeoutMs: 60_000, intervalMs: 500, what: 'node-1 labelled cryo.dev/restore-runtime' });
  }, 700_000);

  it('4. takes a first checkpoint and restores a copy that counts on, in the five commands', async () => {
    const commands = readmeCommands('## First checkpoint and restore');
    expect(commands).toHaveLength(5);
    const outputs: string[] = [];
    for (const line of commands) outputs.push(await shOk(line, 240_000));
    const countSoFar = Number(/^count (\d+)$/m.exec(outputs[1])?.[1]);
    expect(countSoFar).toBeGreaterThan(0);
    // The log shows the checkpointed container's log first (the archive's container.log), then
    // the restored process counting on from the checkpoint's count (taken after the logs above),
    // not from 1: the first line written after the restored container started says so.
    expect(outputs[4]).toMatch(/^count 1$/m);
    const restoredPod = await cluster.get<{ status: { containerStatuses: { state: { running?: { startedAt: string } } }[] } }>(['-n', NS, 'pod', 'counter-restored']);
    const startedAt = Date.parse(restoredPod.status.containerStatuses[0].state.running?.startedAt ?? '');
    const firstAfterRestore = await waitFor(
      async () => {
        const timestamped = await shOk('kubectl logs counter-restored --timestamps');
        const counted = [...timestamped.matchAll(/^(\S+) count (\d+)$/gm)].map(([, at, count]) => ({ at: Date.parse(at), count: Number(count) }));
        return counted.find((line) => line.at >= startedAt);
      },
      { timeoutMs: 15_000, intervalMs: 500, what: 'a line counter-restored wrote after its start' },
    );
    expect(firstAfterRestore.count).toBeGreaterThan(countSoFar);
    // Into the default store: the node's directory, through the agent's registry view.
    const stored = await checkpoint('counter-1');
    expect(stored.status?.storage?.type).toBe('directory');
    expect(stored.status?.containers?.[0].restoreReference).toMatch(/^127\.0\.0\.1:5051\//);
    expect((await storedFiles()).length).toBeGreaterThan(0);
  }, 900_000);

  it('checkpoints on a schedule: counter-schedule.yaml, run every minute, makes Checkpoints of the counter pod', async () => {
    const schedule = await readFile(join(examples, 'counter-schedule.yaml'), 'utf8');
    expect(schedule).toContain('schedule: "*/15 * * * *"');
    // Every minute instead of every 15, so that the first run comes within the test.
    await cluster.kubectl(['-n', NS, 'apply', '-f', '-'], { input: schedule.replace('schedule: "*/15 * * * *"', 'schedule: "* * * * *"') });
    const made = await waitFor(
      async () => {
        const { items } = await cluster.get<{ items: CheckpointObject[] }>(['-n', NS, 'checkpoints', '-l', 'cryo.dev/schedule=counter']);
        return items.find((c) => c.status?.conditions?.some((k) => k.type === 'Ready' && k.status === 'True'));
      },
      { timeoutMs: 180_000, intervalMs: 2_000, what: 'a Ready Checkpoint of the schedule counter' },
    );
    expect(made.metadata.labels?.['cryo.dev/schedule']).toBe('counter');
  }, 240_000);

  it('uninstalls as the README says: the Checkpoints and their data go first, then Cryo; restored pods keep running', async () => {
    const commands = readmeCommands('### Uninstall');
    expect(commands).toHaveLength(3);
    expect(commands[2]).toBe('kubectl delete -k manifests/');
    for (const line of commands) await shOk(line, 300_000);
    expect(await storedFiles()).toEqual([]);
    for (const gone of [['namespace', 'cryo-system'], ['namespace', 'cryo-node'], ['crd', 'checkpoints.cryo.dev']]) {
      expect((await cluster.kubectlResult(['get', ...gone])).code, gone.join(' ')).not.toBe(0);
    }
    const restored = await cluster.get<{ status: { phase: string } }>(['-n', NS, 'pod', 'counter-restored']);
    expect(restored.status.phase).toBe('Running');
  }, 400_000);
});
