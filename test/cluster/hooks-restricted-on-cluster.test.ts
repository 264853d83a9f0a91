/**
 * Hooks without privilege, on the real cluster: the node agent registers its CSI driver
 * hooks.cryo.dev with the kubelet itself (plugins_registry, no node-driver-registrar), and a
 * hook-enabled pod in a namespace enforcing Pod Security `restricted` gets its own socket through
 * an inline CSI volume (no hostPath, which that namespace refuses) and runs its hooks around a real
 * checkpoint; a copy restored from a checkpoint taken with the socket mounted (CRIU needs the
 * mount again) gets the same mount in a `restricted` namespace and is told it was restored.
 *
 * This machine has no CAP_SYS_RESOURCE (docs/cluster.md), and CRIU's dump reads each process's
 * rlimits with prlimit(2), which another user's process (restricted pods run as non-root) allows
 * only with it: here the dump of the restricted pod fails in CRIU's words, the Checkpoint fails and
 * the app, having prepared, is told `aborted`; on a node with the capability it succeeds and the
 * app is told `resumed`. The restore is shown from a checkpoint of the same app running as root in
 * the same namespace while it enforced only `baseline` (which refuses hostPaths too); the copy, with
 * the restricted securityContext, is created after the namespace enforces `restricted`. A pod in
 * its own user namespace (hostUsers: false) needs no such capability for its dump: on containerd
 * it is checkpointed for real in the restricted namespace (its copy does not restore); on CRI-O
 * its dump fails otherwise (README, "Pod Security").
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_RUNTIMES, hookedAppContainer, hookedAppState, openCluster, podReady, startHookedAppCluster, waitFor, type Cluster } from '@cryo/test';

const NS = 'cryo-restricted';
/** Whether this machine may prlimit(2) another user's process (CRIU's dump needs to). */
const HAS_SYS_RESOURCE = (BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]}`) >> 24n) % 2n === 1n;

interface Pod {
  metadata: { name: string; uid: string; annotations?: Record<string, string> };
  spec: { volumes?: { name: string; hostPath?: object; csi?: { driver: string; readOnly?: boolean } }[]; containers: { image: string; volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[] }[] };
  status: { podIP?: string; conditions?: { type: string; status: string }[] };
}
interface CheckpointObject {
  status?: { phase?: string; message?: string; containers?: { name: string; mountDestinations?: string[] }[] };
}

describe.each(CLUSTER_RUNTIMES)('hooks in a namespace enforcing Pod Security restricted (%s)', (runtime) => {
  const opened = openCluster(runtime);
  describe.skipIf('skip' in opened)('through the CSI driver hooks.cryo.dev', () => {
    const cluster = opened as Cluster;
    let app: Awaited<ReturnType<typeof startHookedAppCluster>>;

    // What restricted asks of every container: not root, no escalation, no capabilities,
    // RuntimeDefault seccomp (which also keeps Node's io_uring away from CRIU).
    const restrictedSpec = () => ({
      terminationGracePeriodSeconds: 1,
      securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [hookedAppContainer(app.image, app.upstream, { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } })],
    });
    // The same app as root: what baseline allows and restricted does not.
    const baselineSpec = () => ({
      terminationGracePeriodSeconds: 1,
      containers: [hookedAppContainer(app.image, app.upstream, { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } })],
    });
    const enforce = (level: string) => cluster.kubectl(['label', 'namespace', NS, `pod-security.kubernetes.io/enforce=${level}`, 'pod-security.kubernetes.io/enforce-version=latest', '--overwrite']);
    const checkpoint = async (name: string, podName: string): Promise<CheckpointObject> => {
      await cluster.apply({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Checkpoint', metadata: { name, namespace: NS }, spec: { podName, reason: 'restricted' } });
      return waitFor(
        async () => { const c = await cluster.get<CheckpointObject>(['-n', NS, 'checkpoint', name]); return c.status?.phase === 'Succeeded' || c.status?.phase === 'Failed' ? c : undefined; },
        { timeoutMs: 120_000, intervalMs: 250, what: `Checkpoint ${name} to finish` },
      );
    };
    const pod = (name: string, annotations: Record<string, string>, spec: object) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS, annotations }, spec });
    const readyPod = (name: string): Promise<Pod> =>
      waitFor(async () => { const p = await cluster.get<Pod>(['-n', NS, 'pod', name]); return podReady(p) ? p : undefined; }, { timeoutMs: 90_000, intervalMs: 500, what: `pod ${name} Ready` });
    const expectCsiMount = (p: Pod) => {
      expect(p.spec.volumes?.find((v) => v.name === 'cryo-hooks')).toEqual({ name: 'cryo-hooks', csi: { driver: 'hooks.cryo.dev', readOnly: true } });
      expect(p.spec.volumes?.some((v) => v.hostPath !== undefined)).toBe(false);
      expect(p.spec.containers[0].volumeMounts).toContainEqual({ name: 'cryo-hooks', mountPath: '/run/cryo', readOnly: true });
    };
    /** A hook-enabled pod of `spec`, Ready with the CSI mount, connected to its agent, holding `value`. */
    const startHookedPod = async (name: string, spec: object, value: number): Promise<Pod> => {
      await cluster.apply(pod(name, { 'cryo.dev/hooks': 'enabled' }, spec));
      const started = await readyPod(name);
      expectCsiMount(started);
      await waitFor(async () => (await hookedAppState(started)).events.some((e) => e.startsWith('connected')), { timeoutMs: 30_000, intervalMs: 250, what: `${name} to connect to its agent` });
      // Retried as the outcome below is waited for.
      await waitFor(async () => (await fetch(`http://${started.status.podIP}:8080/value?v=${value}`, { method: 'POST' }).catch(() => undefined))?.ok, { timeoutMs: 10_000, intervalMs: 250, what: `${name} to take the value ${value}` });
      return started;
    };
    // The app's listener is closed from its pre-checkpoint hooks until it is told the outcome, a
    // moment after the Checkpoint's status says how it ended: its answers are waited for, refusals
    // included.
    const outcomeOf = (target: Pod) =>
      waitFor(async () => { const s = await hookedAppState(target).catch(() => undefined); return s?.lastOutcome ? s : undefined; }, { timeoutMs: 30_000, intervalMs: 250, what: `${target.metadata.name}'s outcome` });

    beforeAll(async () => {
      app = await startHookedAppCluster(cluster, NS);
      await enforce('restricted');
    }, 1_200_000);

    afterAll(async () => {
      await app?.done();
    }, 180_000);

    it('registers the driver with the kubelet through plugins_registry: the CSINode of node-1 lists it', async () => {
      const driver = await cluster.get<{ spec: object }>(['csidriver', 'hooks.cryo.dev']);
      expect(driver.spec).toMatchObject({ attachRequired: false, podInfoOnMount: true, volumeLifecycleModes: ['Ephemeral'] });
      const csiNode = await waitFor(
        async () => {
          const node = await cluster.get<{ spec: { drivers: { name: string; nodeID: string }[] | null } }>(['csinode', 'node-1']);
          return node.spec.drivers?.some((d) => d.name === 'hooks.cryo.dev') === true ? node : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500, what: 'the kubelet to register hooks.cryo.dev' },
      );
      expect(csiNode.spec.drivers).toContainEqual(expect.objectContaining({ name: 'hooks.cryo.dev', nodeID: 'node-1' }));
    }, 90_000);

    it('the namespace refuses what the hostPath way would need', async () => {
      const refused = await cluster.kubectlResult(['apply', '--dry-run=server', '-f', '-'], {
        input: JSON.stringify(pod('with-host-path', {}, { ...restrictedSpec(), volumes: [{ name: 'hooks', hostPath: { path: '/var/run/cryo/hooks/x' } }] })),
      });
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/violates PodSecurity "restricted:latest": .*uses restricted volume type "hostPath"/);
    }, 60_000);

    it('gives a hook-enabled pod its own socket, read-only; it connects and prepares for a real checkpoint, and is told how it ended (aborted where CRIU lacks CAP_SYS_RESOURCE)', async () => {
      const original = await startHookedPod('app', restrictedSpec(), 7);
      // Inside, the directory holds its socket alone and nothing can be written there.
      const listing = await cluster.kubectlResult(['-n', NS, 'exec', 'app', '--', 'node', '-e', [
        "const fs = require('node:fs');",
        "let write = 'written';",
        "try { fs.writeFileSync('/run/cryo/planted', 'x'); } catch (e) { write = e.code; }",
        "console.log(JSON.stringify({ entries: fs.readdirSync('/run/cryo'), socket: fs.statSync('/run/cryo/agent.sock').isSocket(), write }));",
      ].join(' ')], { input: '' });
      expect(listing.code, listing.stderr).toBe(0);
      expect(JSON.parse(listing.stdout)).toEqual({ entries: ['agent.sock'], socket: true, write: 'EROFS' });

      const done = await checkpoint('app-1', 'app');
      const events = (await hookedAppState(original)).events;
      // The app prepared (its pre-checkpoint hooks ran) and was told the outcome after the dump.
      expect(events).toContain(`before ${NS}/app-1`);
      if (HAS_SYS_RESOURCE) {
        expect(done.status, done.status?.message).toMatchObject({ phase: 'Succeeded' });
        expect(done.status!.containers![0].mountDestinations).toContain('/run/cryo');
      } else {
        expect(done.status).toMatchObject({ phase: 'Failed', message: expect.stringContaining("Can't get rlimit 0: Operation not permitted") });
      }
      const state = await outcomeOf(original);
      expect(state).toMatchObject({ lastOutcome: HAS_SYS_RESOURCE ? 'resumed' : 'aborted', restoreCount: 0, value: 7 });
      expect(state.events).toContain(`after ${NS}/app-1 ${HAS_SYS_RESOURCE ? 'resumed' : 'aborted'} 0`);
    }, 240_000);

    it('restores a copy in the namespace enforcing restricted from a checkpoint taken with the socket mounted: the same mount again, told restored', async () => {
      // The original as root, while the namespace enforces baseline (no hostPath there either).
      await enforce('baseline');
      const original = await startHookedPod('rooted', baselineSpec(), 8);
      const done = await checkpoint('rooted-1', 'rooted');
      expect(done.status, done.status?.message).toMatchObject({ phase: 'Succeeded' });
      expect(done.status!.containers![0].mountDestinations).toContain('/run/cryo');
      expect(await outcomeOf(original)).toMatchObject({ lastOutcome: 'resumed', value: 8 });

      await enforce('restricted');
      // The webhook adds the mount the checkpoint recorded and turns hooks on; nothing in the copy's spec asks for it.
      await cluster.apply(pod('rooted-copy', { 'cryo.dev/restore-from': 'rooted-1' }, restrictedSpec()));
      const copy = await readyPod('rooted-copy');
      expectCsiMount(copy);
      expect(copy.metadata.annotations?.['cryo.dev/hooks']).toBe('enabled');
      const state = await waitFor(async () => { const s = await hookedAppState(copy); return s.lastOutcome === 'restored' ? s : undefined; }, { timeoutMs: 30_000, intervalMs: 250, what: 'the copy to be told restored' });
      expect(state).toMatchObject({ value: 8, restoreCount: 1 });
    }, 300_000);

    // containerd: the dump of a user-namespaced restricted pod succeeds; a user-namespaced copy
    // does not restore. CRI-O: it bind-mounts the /dev nodes into a user-namespaced container
    // (no mknod there), and CRIU cannot dump those mounts.
    it(runtime === 'containerd'
      ? 'checkpoints for real a restricted pod in its own user namespace (hostUsers: false), which needs no CAP_SYS_RESOURCE; a user-namespaced copy does not restore (CRIU cannot join its network namespace)'
      : 'cannot checkpoint a restricted pod in its own user namespace (hostUsers: false): CRIU cannot dump the /dev bind mounts CRI-O gives it; the app is told aborted', async () => {
      await enforce('restricted');
      // The runtime, as root, creates the pod's user namespace: root of the host owns it, and so
      // may prlimit(2) its processes (CRIU's dump does) whatever the capabilities of the host.
      const inUserNamespace = () => ({ ...restrictedSpec(), hostUsers: false });
      const original = await startHookedPod('userns', inUserNamespace(), 9);
      const done = await checkpoint('userns-1', 'userns');
      const outcome = runtime === 'containerd' ? 'resumed' : 'aborted';
      if (runtime === 'containerd') {
        expect(done.status, done.status?.message).toMatchObject({ phase: 'Succeeded' });
        expect(done.status!.containers![0].mountDestinations).toContain('/run/cryo');
      } else {
        expect(done.status).toMatchObject({ phase: 'Failed', message: expect.stringMatching(/mnt: \S+\/dev\/\w+ doesn't have a proper root mount/) });
      }
      const state = await outcomeOf(original);
      expect(state).toMatchObject({ lastOutcome: outcome, restoreCount: 0, value: 9 });
      expect(state.events).toContain(`after ${NS}/userns-1 ${outcome} 0`);
      if (runtime !== 'containerd') return;

      // Restoring into a user namespace: CRIU makes the dumped user namespace anew, and from
      // inside it may not join the new pod's network namespace, which the pod's own user
      // namespace owns (runc 1.3 + CRIU 4.2: "Can't setns …/net: Operation not permitted"). The
      // runtime's error reaches the pod's Events; the kubelet retries in back-off.
      await cluster.apply(pod('userns-copy', { 'cryo.dev/restore-from': 'userns-1' }, inUserNamespace()));
      const failure = await waitFor(
        async () => {
          const { items } = await cluster.get<{ items: { reason: string; message: string }[] }>(['-n', NS, 'events', '--field-selector', 'involvedObject.name=userns-copy']);
          return items.find((e) => e.reason === 'Failed' && /restore/i.test(e.message));
        },
        { timeoutMs: 90_000, intervalMs: 1_000, what: "userns-copy's restore to fail" },
      );
      expect(failure.message).toMatch(/OCI runtime restore failed: criu failed/);
      await cluster.kubectl(['-n', NS, 'delete', 'pod', 'userns-copy', '--wait=false']);
    }, 300_000);

    it('unmounts the volume when the pod goes, and the agent removes its directory', async () => {
      const { metadata } = await cluster.get<Pod>(['-n', NS, 'pod', 'app']);
      await cluster.kubectl(['-n', NS, 'delete', 'pod', 'app', '--wait=true'], { timeoutMs: 90_000 });
      await waitFor(
        async () => {
          const mounts = await cluster.exec(['cat', '/proc/self/mountinfo']);
          const dirs = await cluster.exec(['ls', '/var/run/cryo/hooks']);
          return !mounts.stdout.includes(metadata.uid) && !dirs.stdout.includes(metadata.uid) ? true : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500, what: "the pod's mount and directory to go" },
      );
    }, 120_000);
  });
});
