/**
 * Cryo on a real Kubernetes node: kube-apiserver, kubelet, the container runtime and CRIU, brought
 * up by scripts/cluster/cluster.sh, with Cryo installed from its manifests (test/cluster/overlay)
 * and images built from its Dockerfiles. Nothing here is a stand-in: the apiserver calls the
 * webhook through its Service, the agent runs as the DaemonSet with its own token, checkpoints go
 * through the kubelet's API into the cluster's registry, and the runtime restores from them.
 *
 * The app is the CRIU tests' Node service with the hook SDK (test/criu/fixtures/hooked-service.ts),
 * holding a TCP connection to an upstream on the host.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_RUNTIMES, hookedAppState, openCluster, podReady, startHookedAppCluster, waitFor, type Cluster, type LineEchoUpstream } from '@cryo/test';

const NS = 'cryo-e2e';

interface Pod {
  metadata: { name: string; uid: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec: { containers: { name: string; image: string }[]; nodeName?: string; affinity?: unknown; imagePullSecrets?: { name: string }[] };
  status: { podIP?: string; phase?: string; conditions?: { type: string; status: string }[] };
}
interface CheckpointObject {
  metadata: { name: string; uid: string; finalizers?: string[] };
  status?: {
    phase?: string;
    message?: string;
    nodeName?: string;
    storage?: { type: string; shared?: boolean };
    containers?: { name: string; referenceType: string; restoreReference: string }[];
  };
}

describe.each(CLUSTER_RUNTIMES)('Cryo on a real node (%s)', (runtime) => {
  const opened = openCluster(runtime);
  describe.skipIf('skip' in opened)('installed from its manifests', () => {
    const cluster = opened as Cluster;
    // The label value the agent gives a node of this runtime (cryo.dev/restore-runtime).
    const restoreRuntime = { containerd: 'containerd', crio: 'cri-o' }[runtime];
    let upstream: LineEchoUpstream;
    let image: string;
    let done: (() => Promise<void>) | undefined;

    const appSpec = (env: Record<string, string> = {}) => ({
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'app',
          image,
          env: Object.entries({ PORT: '8080', UPSTREAM: upstream.address, ...env }).map(([name, value]) => ({ name, value })),
          ports: [{ containerPort: 8080 }],
          readinessProbe: { httpGet: { path: '/state', port: 8080 }, periodSeconds: 1, failureThreshold: 1 },
          // Node 24's libuv makes an io_uring whenever it can, and CRIU cannot dump one: the
          // runtime's default seccomp profile blocks it (README, prerequisites).
          securityContext: { allowPrivilegeEscalation: false, seccompProfile: { type: 'RuntimeDefault' } },
        },
      ],
    });
    const pod = (name: string, annotations: Record<string, string>, spec: object) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NS, annotations },
      spec,
    });
    const deployment = (name: string, replicas: number, annotations: Record<string, string>) => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: NS },
      spec: {
        replicas,
        selector: { matchLabels: { app: name } },
        template: { metadata: { labels: { app: name }, annotations }, spec: appSpec() },
      },
    });
    const getPod = (name: string) => cluster.get<Pod>(['-n', NS, 'pod', name]);
    const readyPods = async (selector: string, count: number): Promise<Pod[]> =>
      waitFor(
        async () => {
          const { items } = await cluster.get<{ items: Pod[] }>(['-n', NS, 'pods', '-l', selector]);
          return items.length === count && items.every(podReady) ? items : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 500, what: `${count} Ready pod(s) ${selector}` },
      );
    const readyPod = async (name: string): Promise<Pod> =>
      waitFor(async () => { const p = await getPod(name); return podReady(p) ? p : undefined; }, { timeoutMs: 90_000, intervalMs: 500, what: `pod ${name} Ready` });
    const checkpoint = async (name: string, podName: string, storage?: object): Promise<CheckpointObject> => {
      await cluster.apply({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Checkpoint', metadata: { name, namespace: NS }, spec: { podName, reason: 'e2e', ...(storage ? { storage } : {}) } });
      return waitFor(
        async () => {
          const c = await cluster.get<CheckpointObject>(['-n', NS, 'checkpoint', name]);
          return c.status?.phase === 'Succeeded' || c.status?.phase === 'Failed' ? c : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 250, what: `Checkpoint ${name} to finish` },
      );
    };

    beforeAll(async () => {
      ({ image, upstream, done } = await startHookedAppCluster(cluster, NS));
    }, 900_000);

    afterAll(async () => {
      await done?.();
    }, 180_000);

    it('keeps its traffic on this machine: a ClusterIP with no endpoints and an outside address go nowhere', async () => {
      await cluster.apply(
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 'nothing', namespace: NS }, spec: { selector: { app: 'nothing' }, ports: [{ port: 80 }] } },
        pod('probe', {}, { terminationGracePeriodSeconds: 0, containers: [{ name: 'probe', image: `${cluster.settings.registry}/cryo-test/busybox:1`, command: ['/bin/sh', '-c', 'exec sleep 3600'] }] }),
      );
      await readyPod('probe');
      const service = await cluster.get<{ spec: { clusterIP: string } }>(['-n', NS, 'service', 'nothing']);
      const before = await cluster.guardCounters();
      const dial = async (address: string) => {
        const result = await cluster.kubectlResult(['-n', NS, 'exec', 'probe', '--', '/bin/busybox', 'nc', '-w', '2', address, '80'], { input: '' });
        expect(result.code).not.toBe(0);
        // nc itself ran and found no peer (not, say, a missing binary).
        expect(result.stderr).toMatch(/nc: (timed out|can't connect)/);
      };
      // A Service without endpoints: kube-proxy rejects it (or, where this host does not forward,
      // routing drops it); nothing answers, nothing leaves.
      await dial(service.spec.clusterIP);
      // A documentation address (TEST-NET-3): the guard drops it as it enters the host.
      await dial('203.0.113.1');
      const after = await cluster.guardCounters();
      expect(after.pod_egress_dropped).toBeGreaterThan(before.pod_egress_dropped ?? 0);
      // A ClusterIP nothing translates is routed to the bridge, never to the default route.
      const route = await cluster.exec(['ip', 'route', 'get', '10.96.255.254']);
      expect(route.stdout).toContain(`dev ${cluster.settings.bridge}`);
      expect(after.escaped).toBe(before.escaped);
    });

    it("labels its node with the runtime that restores there, and its identity may change nothing else of the Node", async () => {
      await waitFor(async () => (await cluster.get<{ metadata: { labels: Record<string, string> } }>(['node', 'node-1'])).metadata.labels['cryo.dev/restore-runtime'] === restoreRuntime,
        { timeoutMs: 30_000, intervalMs: 250, what: `node-1 labelled cryo.dev/restore-runtime=${restoreRuntime}` });
      // The agent's own identity: a token bound to its pod, which names the pod's node.
      const agentPod = (await cluster.get<{ items: Pod[] }>(['-n', 'cryo-node', 'pods', '-l', 'app.kubernetes.io/name=cryo-node-agent'])).items[0];
      const token = (await cluster.kubectl(['-n', 'cryo-node', 'create', 'token', 'cryo-node-agent', '--bound-object-kind=Pod', `--bound-object-name=${agentPod.metadata.name}`, `--bound-object-uid=${agentPod.metadata.uid}`])).trim();
      const asAgent = (...args: string[]) => cluster.kubectlWithToken(token, args);
      const foreign = await asAgent('label', 'node', 'node-1', 'example.com/owner=mallory');
      expect(foreign.code).not.toBe(0);
      expect(foreign.stderr).toMatch(/ValidatingAdmissionPolicy 'cryo-node-agent-own-node-labels'.*denied/);
      const unschedulable = await asAgent('patch', 'node', 'node-1', '--type=merge', '-p', '{"spec":{"unschedulable":true}}');
      expect(unschedulable.code).not.toBe(0);
      expect((await asAgent('label', 'node', 'node-1', 'cryo.dev/e2e=yes')).code).toBe(0);
      expect((await asAgent('label', 'node', 'node-1', 'cryo.dev/e2e-')).code).toBe(0);
      // The same name without the node in its token (impersonated): nothing.
      const impersonated = await cluster.kubectlResult(['label', 'node', 'node-1', 'cryo.dev/e2e=yes', '--as=system:serviceaccount:cryo-node:cryo-node-agent']);
      expect(impersonated.stderr).toContain('its token names none');
    });

    it("checkpoints a hook-enabled Deployment's pod through the kubelet, the runtime and CRIU into the registry", async () => {
      await cluster.apply(deployment('web', 1, { 'cryo.dev/hooks': 'enabled' }));
      const [web] = await readyPods('app=web', 1);
      await waitFor(async () => (await hookedAppState(web)).events.some((e) => e.startsWith('connected')), { timeoutMs: 30_000, intervalMs: 250, what: 'the app to connect to its agent' });
      await fetch(`http://${web.status.podIP}:8080/value?v=42`, { method: 'POST' });

      const done = await checkpoint('web-1', web.metadata.name);
      expect(done.status).toMatchObject({ phase: 'Succeeded', nodeName: 'node-1', reason: 'Stored' });
      // kubectl's own wait reads the Ready condition the agent writes.
      const waited = await cluster.kubectlResult(['-n', NS, 'wait', '--for=condition=Ready', 'checkpoint/web-1', '--timeout=10s']);
      expect(waited.code, waited.stderr).toBe(0);
      const [container] = done.status!.containers!;
      expect(container).toMatchObject({ name: 'app', referenceType: 'image' });
      // The namespace's own repository below the agent's.
      expect(container.restoreReference).toMatch(new RegExp(`^${cluster.settings.registryForPods.replaceAll('.', '\\.')}/cryo/checkpoints/cryo-checkpoints/${NS}@sha256:[0-9a-f]{64}$`));

      // The app ran its hooks and was told it goes on: the original is never told "restored".
      const state = await waitFor(async () => { const s = await hookedAppState(web); return s.lastOutcome !== null ? s : undefined; }, { timeoutMs: 30_000, intervalMs: 250, what: 'the outcome' });
      expect(state).toMatchObject({ lastOutcome: 'resumed', restoreCount: 0, value: 42 });

      // An independent reader: skopeo sees a checkpoint image both runtimes recognise.
      const inspected = await cluster.exec(['skopeo', 'inspect', '--raw', '--tls-verify=false', `docker://${container.restoreReference.replace(cluster.settings.registryForPods, cluster.settings.registry)}`]);
      expect(inspected.code, inspected.stderr).toBe(0);
      const manifest = JSON.parse(inspected.stdout) as { annotations: Record<string, string>; layers: { mediaType: string }[] };
      expect(manifest.annotations['org.criu.checkpoint.container.name']).toBe('app');
      // The agent's default layer compression: the restores below pull and unpack a zstd layer.
      expect(manifest.layers.map((l) => l.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar+zstd']);

      // The real apiserver took the agent's Events, and kubectl describe shows them.
      const events = await cluster.get<{ items: { reason: string }[] }>(['-n', NS, 'events.events.k8s.io', '--field-selector', 'regarding.name=web-1']);
      expect(events.items.map((e) => e.reason)).toContain('CheckpointSucceeded');
      expect(await cluster.kubectl(['-n', NS, 'describe', 'checkpoint', 'web-1'])).toMatch(/CheckpointSucceeded/);
    });

    it('restores a new pod that names only cryo.dev/restore-from: it carries on from its state, is told "restored" and turns Ready', async () => {
      await cluster.apply(pod('web-copy', { 'cryo.dev/restore-from': 'web-1' }, appSpec()));
      const copy = await readyPod('web-copy');
      expect(copy.spec.containers[0].image).toMatch(new RegExp(`/cryo/checkpoints/cryo-checkpoints/${NS}@sha256:`));
      // Only on a node whose runtime restores what took the checkpoint.
      expect(JSON.stringify(copy.spec.affinity)).toContain(`{"key":"cryo.dev/restore-runtime","operator":"In","values":["${restoreRuntime}"]}`);
      const state = await waitFor(async () => { const s = await hookedAppState(copy); return s.lastOutcome === 'restored' ? s : undefined; }, { timeoutMs: 30_000, intervalMs: 250, what: 'the copy to be told restored' });
      expect(state).toMatchObject({ value: 42, restoreCount: 1 });
    });

    it('restores every replica of a Deployment annotated cryo.dev/restore-from, each told "restored"', async () => {
      await cluster.apply(deployment('web-clones', 2, { 'cryo.dev/restore-from': 'web-1' }));
      const clones = await readyPods('app=web-clones', 2);
      for (const clone of clones) {
        const state = await waitFor(async () => { const s = await hookedAppState(clone); return s.lastOutcome === 'restored' ? s : undefined; }, { timeoutMs: 30_000, intervalMs: 250, what: `${clone.metadata.name} to be told restored` });
        expect(state).toMatchObject({ value: 42, restoreCount: 1 });
      }
    });

    it("stores a checkpoint in the node's directory store and restores a pod from it through the agent's registry view on the node", async () => {
      const [web] = await readyPods('app=web', 1);
      await fetch(`http://${web.status.podIP}:8080/value?v=43`, { method: 'POST' });
      const done = await checkpoint('web-dir', web.metadata.name, { directory: { path: '/var/lib/cryo/checkpoints' } });
      expect(done.status).toMatchObject({ phase: 'Succeeded', nodeName: 'node-1', storage: { type: 'directory', shared: false } });
      const [container] = done.status!.containers!;
      // An image of the agent's view on the node's loopback, named by namespace, pod and container.
      expect(container).toMatchObject({ name: 'app', referenceType: 'image' });
      expect(container.restoreReference).toMatch(new RegExp(`^127\\.0\\.0\\.1:5051/cryo-directory/${NS}/${web.metadata.name}/app@sha256:[0-9a-f]{64}$`));

      // An independent reader pulls it from the view: the manifest, and the archive as its layer.
      const inspected = await cluster.exec(['skopeo', 'inspect', '--raw', '--tls-verify=false', `docker://${container.restoreReference}`]);
      expect(inspected.code, inspected.stderr).toBe(0);
      const manifest = JSON.parse(inspected.stdout) as { annotations: Record<string, string>; layers: { digest: string }[] };
      expect(manifest.annotations['org.criu.checkpoint.container.name']).toBe('app');

      await cluster.apply(pod('web-from-dir', { 'cryo.dev/restore-from': 'web-dir' }, appSpec()));
      const copy = await readyPod('web-from-dir');
      expect(copy.spec.containers[0].image).toBe(container.restoreReference);
      // Only on the node whose directory holds it, and with no registry pull secret.
      expect(JSON.stringify(copy.spec.affinity)).toContain('{"key":"metadata.name","operator":"In","values":["node-1"]}');
      expect(copy.spec.imagePullSecrets ?? []).toEqual([]);
      const state = await waitFor(async () => { const s = await hookedAppState(copy); return s.lastOutcome === 'restored' ? s : undefined; }, { timeoutMs: 30_000, intervalMs: 250, what: 'the copy to be told restored' });
      expect(state).toMatchObject({ value: 43, restoreCount: 1 });

      // Another namespace cannot name it, whoever writes the image: the admission policy refuses.
      await cluster.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `${NS}-other` } });
      const stolen = await cluster.kubectlResult(['apply', '-f', '-'], {
        input: JSON.stringify({ ...pod('thief', {}, { containers: [{ name: 'app', image: container.restoreReference }] }), metadata: { name: 'thief', namespace: `${NS}-other` } }),
      });
      expect(stolen.code).not.toBe(0);
      expect(stolen.stderr).toMatch(/cryo-restore-image-own-namespace.*a pod may restore only checkpoints of its own namespace/);
      // Nor a registry checkpoint's image, init containers included.
      const registryImage = (await cluster.get<CheckpointObject>(['-n', NS, 'checkpoint', 'web-1'])).status!.containers![0].restoreReference;
      const stolenFromRegistry = await cluster.kubectlResult(['apply', '-f', '-'], {
        input: JSON.stringify({ ...pod('thief-2', {}, { initContainers: [{ name: 'init', image: registryImage }], containers: [{ name: 'app', image: `${cluster.settings.registryForPods}/cryo-test/busybox:1` }] }), metadata: { name: 'thief-2', namespace: `${NS}-other` } }),
      });
      expect(stolenFromRegistry.stderr).toMatch(/cryo-restore-image-own-namespace.*names another namespace's checkpoint image/);
      await cluster.kubectl(['delete', 'namespace', `${NS}-other`, '--wait=false']);

      // Deleting the Checkpoint removes its archive on the node first (the agent's finalizer): the view serves it no more.
      expect(done.metadata?.finalizers).toEqual(['cryo.dev/stored-data']);
      await cluster.kubectl(['-n', NS, 'delete', 'checkpoint', 'web-dir', '--timeout=60s']);
      const afterDelete = await cluster.exec(['skopeo', 'inspect', '--raw', '--tls-verify=false', `docker://${container.restoreReference}`]);
      expect(afterDelete.code, afterDelete.stdout).not.toBe(0);
    });

    it("keeps a tenant of another namespace from another's checkpoints and hook sockets, whatever its Role allows at home", async () => {
      // The tenant Role of docs/security.md, in a namespace of its own, for the user tenant-b.
      const TENANT = `${NS}-tenant`;
      await cluster.apply(
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: TENANT } },
        { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'cryo-checkpointer', namespace: TENANT }, rules: [
          { apiGroups: ['cryo.dev'], resources: ['checkpoints'], verbs: ['create', 'get', 'list', 'watch', 'delete'] },
          { apiGroups: [''], resources: ['pods'], verbs: ['create', 'get', 'list', 'watch'] },
        ] },
        { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'tenant-b', namespace: TENANT },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'cryo-checkpointer' }, subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'tenant-b' }] },
      );
      const asTenant = (args: string[], input?: object) => cluster.kubectlAs({ name: 'tenant-b' }, args, input === undefined ? {} : { input: JSON.stringify(input) });
      const inTenant = (object: { metadata: object }) => ({ ...object, metadata: { ...object.metadata, namespace: TENANT } });

      // Neither read nor delete another namespace's Checkpoint, nor write a status at home.
      expect((await asTenant(['-n', NS, 'get', 'checkpoint', 'web-1'])).stderr).toMatch(/Forbidden/);
      expect((await asTenant(['-n', NS, 'delete', 'checkpoint', 'web-1'])).stderr).toMatch(/Forbidden/);
      expect((await cluster.get<CheckpointObject>(['-n', NS, 'checkpoint', 'web-1'])).status?.phase).toBe('Succeeded');
      // Restore it by name: the webhook looks the name up in the pod's own namespace only.
      const byName = await asTenant(['apply', '-f', '-'], inTenant(pod('restore-theirs', { 'cryo.dev/restore-from': 'web-1' }, appSpec())));
      expect(byName.stderr).toMatch(/Checkpoint "web-1" not found in namespace "cryo-e2e-tenant"/);
      // Push elsewhere: a repository the administrator did not allow fails the Checkpoint.
      // Pulled every time: the checkpoint records the base image by the digest the node has, which
      // a restore pulls again; a copy of busybox:1 the node kept from an older registry would be gone there.
      const sleeper = { terminationGracePeriodSeconds: 0, containers: [{ name: 'sleep', image: `${cluster.settings.registry}/cryo-test/busybox:1`, imagePullPolicy: 'Always', command: ['/bin/sh', '-c', 'exec sleep 3600'] }] };
      expect((await asTenant(['apply', '-f', '-'], inTenant(pod('sleeper', {}, sleeper)))).code).toBe(0);
      await waitFor(async () => podReady(await cluster.get<Pod>(['-n', TENANT, 'pod', 'sleeper'])), { timeoutMs: 60_000, intervalMs: 500, what: 'the tenant pod Ready' });
      const elsewhere = { apiVersion: 'cryo.dev/v1alpha1', kind: 'Checkpoint', metadata: { name: 'elsewhere', namespace: TENANT }, spec: { podName: 'sleeper', storage: { registry: { repository: `${cluster.settings.registryForPods}/someone-else` } } } };
      expect((await asTenant(['apply', '-f', '-'], elsewhere)).code).toBe(0);
      const refused = await waitFor(async () => { const c = await cluster.get<CheckpointObject>(['-n', TENANT, 'checkpoint', 'elsewhere']); return c.status?.phase === 'Failed' ? c : undefined; }, { timeoutMs: 30_000, intervalMs: 250, what: 'the Checkpoint to fail' });
      expect(refused.status?.message).toMatch(/registry repository .*\/someone-else is not one this node agent pushes to/);
      expect(refused.status).toMatchObject({ reason: 'StorageRefused', retryable: false });
      expect((await cluster.kubectlResult(['-n', TENANT, 'wait', '--for=condition=Failed', 'checkpoint/elsewhere', '--timeout=10s'])).code).toBe(0);
      // The administrator's storage class for this tenant: its Checkpoints go there, and a pod
      // restoring from one gets the class's pull Secret of its own namespace. Other namespaces may not use it.
      await cluster.apply(
        { apiVersion: 'cryo.dev/v1alpha1', kind: 'CheckpointStorageClass', metadata: { name: 'tenant-registry' }, spec: { namespaces: [TENANT], registry: { repository: `${cluster.settings.registryForPods}/tenant-classes`, pullSecretName: 'tenant-pull' } } },
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'tenant-pull', namespace: TENANT }, type: 'kubernetes.io/dockerconfigjson',
          data: { '.dockerconfigjson': Buffer.from(JSON.stringify({ auths: { [cluster.settings.registryForPods]: { auth: Buffer.from('tenant-b:pull-only').toString('base64') } } })).toString('base64') } },
      );
      const viaClass = { apiVersion: 'cryo.dev/v1alpha1', kind: 'Checkpoint', metadata: { name: 'via-class', namespace: TENANT }, spec: { podName: 'sleeper', storageClassName: 'tenant-registry' } };
      // First a class open to another namespace only: refused, whatever the tenant names.
      await cluster.apply({ apiVersion: 'cryo.dev/v1alpha1', kind: 'CheckpointStorageClass', metadata: { name: 'another-tenants-registry' }, spec: { namespaces: ['someone-else'], registry: { repository: `${cluster.settings.registryForPods}/tenant-classes` } } });
      expect((await asTenant(['apply', '-f', '-'], { ...viaClass, metadata: { name: 'via-their-class', namespace: TENANT }, spec: { podName: 'sleeper', storageClassName: 'another-tenants-registry' } })).code).toBe(0);
      const notOpen = await waitFor(async () => { const c = await cluster.get<CheckpointObject>(['-n', TENANT, 'checkpoint', 'via-their-class']); return c.status?.phase === 'Failed' ? c : undefined; }, { timeoutMs: 30_000, intervalMs: 250, what: 'the Checkpoint through a class not open to it to fail' });
      expect(notOpen.status?.message).toMatch(new RegExp(`^storage class another-tenants-registry is not open to namespace ${TENANT}: `));
      expect((await asTenant(['apply', '-f', '-'], viaClass)).code).toBe(0);
      const stored = await waitFor(async () => { const c = await cluster.get<CheckpointObject>(['-n', TENANT, 'checkpoint', 'via-class']); return c.status?.phase === 'Succeeded' || c.status?.phase === 'Failed' ? c : undefined; }, { timeoutMs: 60_000, intervalMs: 250, what: 'the Checkpoint through the class to finish' });
      expect(stored.status, stored.status?.message).toMatchObject({ phase: 'Succeeded', storage: { type: 'registry', className: 'tenant-registry', pullSecretName: 'tenant-pull' } });
      expect(stored.status?.containers?.[0].restoreReference).toMatch(new RegExp(`/tenant-classes/cryo-checkpoints/${TENANT}@sha256:`));
      // A pod restoring from it gets the class's pull Secret and the image in the tenant's own
      // repository (what the webhook patches, read through a server-side dry run: the restore
      // itself is what the tests above prove).
      const copy = await asTenant(['create', '--dry-run=server', '-o', 'json', '-f', '-'], inTenant(pod('sleeper-copy', { 'cryo.dev/restore-from': 'via-class' }, sleeper)));
      expect(copy.code, copy.stderr).toBe(0);
      const copySpec = (JSON.parse(copy.stdout) as Pod).spec;
      expect(copySpec.imagePullSecrets).toEqual([{ name: 'tenant-pull' }]);
      expect(copySpec.containers[0].image).toBe(stored.status?.containers?.[0].restoreReference);
      // Reach the hook directory: the admission policy refuses it (no Cryo annotation: the webhook is not asked).
      const hostHooks = { volumes: [{ name: 'all-hooks', hostPath: { path: '/var/run/cryo/hooks' } }], containers: [{ ...sleeper.containers[0], volumeMounts: [{ name: 'all-hooks', mountPath: '/hooks' }] }] };
      const hooks = await asTenant(['apply', '-f', '-'], inTenant(pod('hook-thief', {}, hostHooks)));
      expect(hooks.stderr).toMatch(/cryo-hook-socket-own-pod.*reaches Cryo's hook directory/);
      const parent = { ...hostHooks, volumes: [{ name: 'all-hooks', hostPath: { path: '/run' } }] };
      expect((await asTenant(['apply', '-f', '-'], inTenant(pod('hook-thief-2', {}, parent)))).stderr).toMatch(/cryo-hook-socket-own-pod/);
      await cluster.kubectl(['delete', 'namespace', TENANT, '--wait=false']);
      await cluster.kubectl(['delete', 'checkpointstorageclass', 'tenant-registry', 'another-tenants-registry']);
    }, 240_000);

    it("keeps the webhook's identity to its caBundle, and an agent's to the Checkpoints of its own node", async () => {
      // The webhook: its caBundle, nothing else of its configuration.
      const webhookToken = (await cluster.kubectl(['-n', 'cryo-system', 'create', 'token', 'cryo-webhook'])).trim();
      const patchConfig = (ops: object[]) => cluster.kubectlWithToken(webhookToken, ['patch', 'mutatingwebhookconfiguration', 'cryo-webhook', '--type=json', '-p', JSON.stringify(ops)]);
      const ignore = await patchConfig([{ op: 'replace', path: '/webhooks/0/failurePolicy', value: 'Ignore' }]);
      expect(ignore.code).not.toBe(0);
      expect(ignore.stderr).toMatch(/cryo-webhook-ca-bundle-only.*may change only webhooks\[\*\]\.clientConfig\.caBundle/);
      const elsewhere = await patchConfig([{ op: 'replace', path: '/webhooks/0/clientConfig/service/namespace', value: NS }]);
      expect(elsewhere.code).not.toBe(0);
      const relabel = await cluster.kubectlWithToken(webhookToken, ['label', 'mutatingwebhookconfiguration', 'cryo-webhook', 'example.com/owner=mallory']);
      expect(relabel.stderr).toMatch(/may not change the metadata/);
      // The change it does make: the same CA with a trailing newline is a real change, and still valid.
      const config = await cluster.get<{ webhooks: { clientConfig: { caBundle: string } }[] }>(['mutatingwebhookconfiguration', 'cryo-webhook']);
      const bundle = Buffer.from(config.webhooks[0].clientConfig.caBundle, 'base64').toString('utf8');
      const rewritten = await patchConfig([{ op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: Buffer.from(`${bundle.trimEnd()}\n\n`).toString('base64') }]);
      expect(rewritten.code, rewritten.stderr).toBe(0);

      // The agent: the status of its own node's Checkpoints only.
      const agentPod = (await cluster.get<{ items: Pod[] }>(['-n', 'cryo-node', 'pods', '-l', 'app.kubernetes.io/name=cryo-node-agent'])).items[0];
      const agentToken = (await cluster.kubectl(['-n', 'cryo-node', 'create', 'token', 'cryo-node-agent', '--bound-object-kind=Pod', `--bound-object-name=${agentPod.metadata.name}`, `--bound-object-uid=${agentPod.metadata.uid}`])).trim();
      // Each write as it would be made: on the newest version (a write that lands changes it).
      const mine = () => cluster.get<{ status: { nodeName: string } }>(['-n', NS, 'checkpoint', 'web-1']);
      const replaceStatus = async (run: (args: string[], options: { input: string }) => Promise<{ code: number; stderr: string }>, change: (status: { nodeName: string }) => object = (status) => status) => {
        const current = await mine();
        return run(['replace', '--subresource=status', '-f', '-'], { input: JSON.stringify({ ...current, status: change(current.status) }) });
      };
      const toNode2 = (status: { nodeName: string }) => ({ ...status, nodeName: 'node-2' });
      const asAgent = (args: string[], options: { input: string }) => cluster.kubectlWithToken(agentToken, args, options);
      const same = await replaceStatus(asAgent);
      expect(same.code, same.stderr).toBe(0);
      const moved = await replaceStatus(asAgent, toNode2);
      expect(moved.stderr).toMatch(/cryo-node-agent-own-checkpoints.*may write only status that names its own Node \(node-1\)/);
      // The agent of another node (what its pod-bound token would say) may not touch it at all.
      const agentUser = 'system:serviceaccount:cryo-node:cryo-node-agent';
      const otherNode = await replaceStatus((args, options) => cluster.kubectlAs({ name: agentUser, extra: { 'authentication.kubernetes.io/node-name': ['node-2'] } }, args, options), toNode2);
      expect(otherNode.stderr).toMatch(/belongs to node node-1, whose agent alone writes its status/);
      const noNode = await replaceStatus((args, options) => cluster.kubectlAs({ name: agentUser }, args, options));
      expect(noNode.stderr).toMatch(/its token names none/);
      // Its patch right (for its finalizer) changes nothing else: not a label, not another finalizer.
      const relabelled = await cluster.kubectlWithToken(agentToken, ['-n', NS, 'patch', 'checkpoint', 'web-1', '--type=merge', '-p', '{"metadata":{"labels":{"stolen":"yes"}}}']);
      expect(relabelled.stderr).toMatch(/cryo-node-agent-own-checkpoints.*writes only the status of Checkpoints and its own finalizer/);
      const pinned = await cluster.kubectlWithToken(agentToken, ['-n', NS, 'patch', 'checkpoint', 'web-1', '--type=json', '-p', '[{"op":"add","path":"/metadata/finalizers/-","value":"example.com/forever"}]']);
      expect(pinned.stderr).toMatch(/cryo-node-agent-own-checkpoints.*writes only the status of Checkpoints and its own finalizer/);
    });

    it("answers only the kube-apiserver's client certificate: a review posted from a pod or the node gets 401, the kubelet's certificate 403", async () => {
      // A ready replica, by its pod IP: on the bridge, where a pod and the node reach it directly.
      const replicas = await cluster.get<{ items: Pod[] }>(['-n', 'cryo-system', 'pods', '-l', 'app.kubernetes.io/name=cryo-webhook']);
      const webhook = replicas.items.find(podReady)!;
      const url = (path: string) => `https://${webhook.status.podIP}:8443${path}`;
      // What the apiserver would send for a hook-enabled pod; answered, it would come back patched.
      const review = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: {
        uid: 'a1b2c3d4-0000-4000-8000-000000000001', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' },
        namespace: NS, operation: 'CREATE', object: pod('forged', { 'cryo.dev/hooks': 'enabled' }, { containers: [{ name: 'app', image: 'app:1' }] }),
      } });
      const pki = `${cluster.settings.clusterDir}/state/pki`;
      const fromNode = async (path: string, cert?: string) => {
        const result = await cluster.exec(['curl', '-sk', '--max-time', '10', '-w', '\n%{http_code}', ...(cert ? ['--cert', `${pki}/${cert}.crt`, '--key', `${pki}/${cert}.key`] : []),
          ...(path === '/mutate' ? ['-H', 'Content-Type: application/json', '--data-binary', '@-'] : []), url(path)], { input: review });
        const lines = result.stdout.trimEnd().split('\n');
        return { status: Number(lines.pop()), body: lines.join('\n') };
      };

      // From the node: no certificate, and the kubelet's (the same cluster CA, another name).
      const anonymous = await fromNode('/mutate');
      expect(anonymous.status).toBe(401);
      expect(JSON.parse(anonymous.body).error).toMatch(/^no client certificate; this webhook answers only the kube-apiserver: configure the kube-apiserver's admission configuration/);
      const kubelet = await fromNode('/mutate', 'kubelet-client');
      expect(kubelet.status).toBe(403);
      expect(JSON.parse(kubelet.body).error).toContain('names "system:node:node-1", none of --client-allowed-names');
      // From a pod, as any tenant could.
      await cluster.apply(pod('webhook-caller', {}, { terminationGracePeriodSeconds: 0, containers: [{ name: 'caller', image: `${cluster.settings.registry}/cryo-test/busybox:1`, command: ['/bin/sh', '-c', 'exec sleep 3600'] }] }));
      await readyPod('webhook-caller');
      const fromPod = await cluster.kubectlResult(['-n', NS, 'exec', 'webhook-caller', '--', '/bin/busybox', 'wget', '-q', '-O', '-', '--no-check-certificate',
        '--header', 'Content-Type: application/json', '--post-data', review, url('/mutate')]);
      expect(fromPod.code).not.toBe(0);
      expect(fromPod.stderr).toContain('server returned error: HTTP/1.1 401 Unauthorized');
      // The kubelet's probes and a scraper need no certificate; the refusals are counted.
      expect((await fromNode('/healthz')).body.trim()).toBe('ok');
      const metrics = (await fromNode('/metrics')).body;
      expect(metrics).toMatch(/cryo_webhook_bad_requests_total\{reason="no-client-certificate"\} ([2-9]|\d\d)/);
      expect(metrics).toMatch(/cryo_webhook_bad_requests_total\{reason="client-name-not-allowed"\} [1-9]/);

      // The apiserver's certificate is answered, and pods created through the apiserver are mutated.
      const asApiserver = await fromNode('/mutate', 'apiserver-webhook-client');
      expect(asApiserver.status).toBe(200);
      expect(JSON.parse(asApiserver.body).response).toMatchObject({ allowed: true, patchType: 'JSONPatch' });
      const created = await cluster.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], {
        input: JSON.stringify(pod('hooked-dry-run', { 'cryo.dev/hooks': 'enabled' }, { containers: [{ name: 'app', image: `${cluster.settings.registry}/cryo-test/busybox:1` }] })),
      });
      expect(JSON.parse(created).metadata.annotations).toMatchObject({ 'cryo.dev/hooks-status': 'injected' });
    });

    it('fails the checkpoint of an app holding an established connection without hooks, in CRIU\'s words; the app runs on', async () => {
      await cluster.apply(pod('raw', {}, appSpec()));
      const raw = await readyPod('raw');
      const failed = await checkpoint('raw-1', 'raw');
      expect(failed.status?.phase).toBe('Failed');
      // The runtime only names CRIU's log; the agent read the cause from it.
      expect(failed.status?.message).toMatch(/CRIU said: Error \(criu\/sk-inet\.c:\d+\): inet: Connected TCP socket/);
      expect((await hookedAppState(raw)).value).toBe(0);
      expect(podReady(await getPod('raw'))).toBe(true);
    });

    it('refuses at admission a restore whose pod lacks a mount the checkpoint recorded', async () => {
      const result = await cluster.kubectlResult(['apply', '-f', '-'], { input: JSON.stringify(pod('web-no-token', { 'cryo.dev/restore-from': 'web-1' }, { ...appSpec(), automountServiceAccountToken: false })) });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('/var/run/secrets/kubernetes.io/serviceaccount');
    });
  });
});
