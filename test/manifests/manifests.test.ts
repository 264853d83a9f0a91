/**
 * The install manifests (manifests/) and the images (webhook/Dockerfile, node-agent/Dockerfile),
 * checked without a cluster: against the Kubernetes API schemas, against each other and the
 * webhook's and node agent's defaults, against the Checkpoint API types, and against the rules
 * Cryo promises (least privilege, no root where it can be avoided, no single point of failure).
 */
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { V1Condition, V1LabelSelector, V1LabelSelectorRequirement } from '@kubernetes/client-node';
import type { ICustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';
import type { IMutatingWebhookConfiguration, IValidatingAdmissionPolicy, IValidatingAdmissionPolicyBinding } from 'kubernetes-models/admissionregistration.k8s.io/v1';
import type { IDaemonSet, IDeployment } from 'kubernetes-models/apps/v1';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1';
import type { ICSIDriver } from 'kubernetes-models/storage.k8s.io/v1';
import type { IClusterRole, IClusterRoleBinding, IPolicyRule, IRole, IRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import type { INamespace, IPodSpec, IService, IServiceAccount } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import {
  CHECKPOINT_API_VERSION,
  CHECKPOINT_GROUP,
  CHECKPOINT_KIND,
  CHECKPOINT_PHASES,
  CHECKPOINT_PLURAL,
  CHECKPOINT_PURPOSES,
  CHECKPOINT_VERSION,
  CONTAINER_RUNTIMES,
  type Checkpoint,
  type CheckpointedContainer,
  type CheckpointSpec,
  type CheckpointStatus,
  type CheckpointStorage,
  type RestoreReferenceType,
  CHECKPOINT_STORAGE_CLASS_KIND,
  CHECKPOINT_STORAGE_CLASS_PLURAL,
  STORAGE_CLASS_LAYER_COMPRESSIONS,
  type CheckpointStorageClass,
  type CheckpointStorageClassSpec,
  CHECKPOINT_SCHEDULE_KIND,
  CHECKPOINT_SCHEDULE_PLURAL,
  DEFAULT_KEEP_LAST,
  type CheckpointSchedule,
  type CheckpointScheduleSpec,
  type CheckpointScheduleStatus,
  type CheckpointTemplate,
  type ScheduledCheckpointReference,
  HOOK_CSI_DRIVER,
  MIGRATION_KIND,
  MIGRATION_PHASES,
  MIGRATION_PLURAL,
  type Migration,
  type MigrationSpec,
  type MigrationStatus,
} from '@cryo/common';
import { ANNOTATION_PREFIX } from '../../common/src/annotations.ts';
import { controllerOptionSpecs, CONTROLLER_ENV, CONTROLLER_NODE_FLAGS } from '@cryo/controller';
import { nodeAgentOptionSpecs, NODE_AGENT_ENV, NODE_AGENT_NODE_FLAGS } from '@cryo/node-agent';
import { webhookOptionSpecs } from '@cryo/webhook';
import { compileSchema, formatErrors, schemaNodes, structuralSchemaProblems, type SchemaNode } from './crd-schema.ts';
import { kubernetesModel, unknownFields, validateAgainstKubernetesSchema } from './kubernetes-schemas.ts';
import {
  KUSTOMIZATION_FILE,
  REMOVE,
  REPO_ROOT,
  loadFile,
  loadManifests,
  objectName,
  readKustomization,
  withField,
  yamlFilesInManifestsDir,
  type KubeObject,
} from './load-manifests.ts';

const documents = loadManifests();
const objects = documents.map((d) => d.object);

const defaults = {
  port: webhookOptionSpecs.port.default,
  namespace: webhookOptionSpecs.namespace.default,
  serviceName: webhookOptionSpecs.serviceName.default,
  webhookConfigName: webhookOptionSpecs.webhookConfigName.default,
  tlsSecretName: webhookOptionSpecs.tlsSecretName.default,
};

const agentDefaults = {
  port: nodeAgentOptionSpecs.port.default,
  namespace: nodeAgentOptionSpecs.namespace.default,
  hostHooksDir: nodeAgentOptionSpecs.hostHooksDir.default,
  kubeletCheckpointsDir: nodeAgentOptionSpecs.kubeletCheckpointsDir.default,
  criuLogDirs: nodeAgentOptionSpecs.criuLogDirs.default,
  runtimeConfigFiles: [nodeAgentOptionSpecs.containerdConfig.default, nodeAgentOptionSpecs.crioConfig.default, nodeAgentOptionSpecs.crioConfigDir.default],
  directoryRegistryAddress: nodeAgentOptionSpecs.directoryRegistryAddress.default,
};

/**
 * The registry the workloads' images name until Kustomization's images: sets theirs: a .invalid
 * host never resolves (RFC 2606), so an install with the images unset pulls nothing from anyone.
 */
const UNSET_IMAGE_REGISTRY = 'cryo.invalid';
/** The node agent's default store as manifests/ installs it (docs: README's install, operations.md). */
const DEFAULT_STORE_DIR = '/var/lib/cryo/checkpoints';

/** The label naming the component an object belongs to. */
const NAME_LABEL = 'app.kubernetes.io/name';
const WEBHOOK = 'cryo-webhook';
const NODE_AGENT = 'cryo-node-agent';
const CONTROLLER = 'cryo-controller';

const controllerDefaults = {
  port: controllerOptionSpecs.port.default,
  namespace: controllerOptionSpecs.namespace.default,
  leaseName: controllerOptionSpecs.leaseName.default,
};

/**
 * Cryo's components, by their app.kubernetes.io/name: the namespace each one's objects live in,
 * and the Pod Security level that namespace enforces. Only the node agent needs host paths
 * and root, so only its namespace is privileged. The controller shares the webhook's namespace.
 */
const COMPONENTS: Record<string, { namespace: string; podSecurity: 'restricted' | 'baseline' | 'privileged' }> = {
  [WEBHOOK]: { namespace: defaults.namespace, podSecurity: 'restricted' },
  [NODE_AGENT]: { namespace: agentDefaults.namespace, podSecurity: 'privileged' },
  [CONTROLLER]: { namespace: controllerDefaults.namespace, podSecurity: 'restricted' },
};

/** Each namespace once, though several components may live in one. */
const componentNamespaces = (): string[] => [...new Set(Object.values(COMPONENTS).map((c) => c.namespace))].sort();

const CLUSTER_SCOPED_KINDS = [
  'Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration',
  'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding', 'CSIDriver',
];

/** The kinds manifests/ holds, typed as the Kubernetes API defines them (kubernetes-models). */
interface Kinds {
  Namespace: INamespace;
  CustomResourceDefinition: ICustomResourceDefinition;
  ServiceAccount: IServiceAccount;
  ClusterRole: IClusterRole;
  ClusterRoleBinding: IClusterRoleBinding;
  Role: IRole;
  RoleBinding: IRoleBinding;
  Service: IService;
  Deployment: IDeployment;
  DaemonSet: IDaemonSet;
  PodDisruptionBudget: IPodDisruptionBudget;
  MutatingWebhookConfiguration: IMutatingWebhookConfiguration;
  ValidatingAdmissionPolicy: IValidatingAdmissionPolicy;
  ValidatingAdmissionPolicyBinding: IValidatingAdmissionPolicyBinding;
  CSIDriver: ICSIDriver;
}
type Loaded<K extends keyof Kinds> = Kinds[K] & KubeObject;

/** Every object of these kinds in manifests/. */
function all<K extends keyof Kinds>(...kinds: K[]): Loaded<K>[] {
  return objects.filter((o) => (kinds as string[]).includes(o.kind)) as Loaded<K>[];
}

/** The one object of this kind and name in manifests/; none or several is an error. */
function the<K extends keyof Kinds>(kind: K, name: string): Loaded<K> {
  const found = all(kind).filter((o) => o.metadata.name === name);
  if (found.length !== 1) throw new Error(`expected exactly one ${kind} ${name} in manifests/, found ${found.length}`);
  return found[0];
}

/** The component (app.kubernetes.io/name) an object belongs to. */
function componentOf(object: KubeObject): string | undefined {
  return object.metadata.labels?.[NAME_LABEL];
}

/** True when a label selector's matchLabels pick pods with these labels. */
function selects(selector: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] } | undefined, labels: Record<string, string> | undefined): boolean {
  if (selector === undefined || labels === undefined) return false;
  const matchLabels = selector.matchLabels ?? {};
  return selector.matchExpressions === undefined && Object.keys(matchLabels).length > 0
    && Object.entries(matchLabels).every(([key, value]) => labels[key] === value);
}

/** The registry part of an image reference, if it names one (`host.domain/…`, `host:port/…`, `localhost/…`). */
function registryHostOf(image: string): string | undefined {
  const [first, ...rest] = image.split('/');
  if (rest.length === 0) return undefined;
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : undefined;
}

function packageJson(dir: string): { name: string; version: string; bin?: Record<string, string> } {
  return JSON.parse(readFileSync(join(REPO_ROOT, dir, 'package.json'), 'utf8')) as { name: string; version: string; bin?: Record<string, string> };
}

describe('manifests/ installs with kubectl apply -k and with kubectl apply -f', () => {
  it('Kustomization lists every file in manifests/, each once, and nothing else', () => {
    const { resources } = readKustomization();
    expect(new Set(resources).size).toBe(resources.length);
    expect([...resources].sort()).toEqual(yamlFilesInManifestsDir().filter((f) => f !== KUSTOMIZATION_FILE));
  });

  it('Kustomization only lists resources and sets images, so kubectl apply -f installs the same objects (their images unset)', () => {
    // No namespace:, labels:, patches or generators: every file is complete as written.
    expect(Object.keys(readKustomization()).sort()).toEqual(['apiVersion', 'images', 'kind', 'resources']);
  });

  it.each([
    ['kubectl apply -f manifests/ (files in name order)', () => yamlFilesInManifestsDir().filter((f) => f !== KUSTOMIZATION_FILE)],
    ['Kustomization (its resources in order)', () => readKustomization().resources],
  ])('%s creates every namespace before anything in it', (_, files) => {
    const created = new Set<string>();
    for (const file of files()) {
      for (const { object } of loadFile(file)) {
        const namespace = object.metadata.namespace;
        if (namespace !== undefined) expect(created, `${file} ${object.kind} ${object.metadata.name}`).toContain(namespace);
        if (object.kind === 'Namespace') created.add(object.metadata.name);
      }
    }
    expect([...created].sort()).toEqual(componentNamespaces());
  });

  it('creates one namespace per component, each enforcing the Pod Security level the component needs', () => {
    expect(all('Namespace').map((n) => n.metadata.name).sort()).toEqual(componentNamespaces());
    expect(COMPONENTS[WEBHOOK]).toEqual({ namespace: 'cryo-system', podSecurity: 'restricted' });
    expect(COMPONENTS[NODE_AGENT]).toEqual({ namespace: 'cryo-node', podSecurity: 'privileged' });
    expect(COMPONENTS[CONTROLLER]).toEqual({ namespace: 'cryo-system', podSecurity: 'restricted' });
    for (const { namespace, podSecurity } of Object.values(COMPONENTS)) {
      expect(the('Namespace', namespace).metadata.labels, namespace).toMatchObject({
        'pod-security.kubernetes.io/enforce': podSecurity,
        'pod-security.kubernetes.io/enforce-version': 'latest',
      });
    }
  });

  it('every namespaced object belongs to a component and lives in its namespace; cluster-scoped ones have none', () => {
    for (const object of objects) {
      const where = `${object.kind} ${object.metadata.name}`;
      if (CLUSTER_SCOPED_KINDS.includes(object.kind)) {
        expect(object.metadata.namespace, where).toBeUndefined();
        continue;
      }
      const component = componentOf(object);
      expect(Object.keys(COMPONENTS), `${where}: ${NAME_LABEL}`).toContain(component);
      expect(object.metadata.namespace, where).toBe(COMPONENTS[component!].namespace);
    }
  });

  it('runs pods only from the webhook and controller Deployments and the node agent DaemonSet, which the tests below check', () => {
    expect(all('Deployment', 'DaemonSet').map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`).sort()).toEqual([
      `DaemonSet/${agentDefaults.namespace}/${NODE_AGENT}`,
      `Deployment/${controllerDefaults.namespace}/${CONTROLLER}`,
      `Deployment/${defaults.namespace}/${WEBHOOK}`,
    ]);
  });

  it('no two objects share a kind, namespace and name', () => {
    const keys = objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('every object matches the Kubernetes API', () => {
  it.each(documents.map((d) => [objectName(d), d.object] as const))('%s validates against its kubernetes-models schema', async (_, object) => {
    await expect(validateAgainstKubernetesSchema(object)).resolves.toBeUndefined();
  });

  it.each(documents.map((d) => [objectName(d), d.object] as const))('%s has no field unknown to the Kubernetes API', (_, object) => {
    expect(unknownFields(object)).toEqual([]);
  });

  it('a kind kubernetes-models does not know fails instead of passing unchecked', async () => {
    await expect(kubernetesModel(CHECKPOINT_API_VERSION, CHECKPOINT_KIND)).rejects.toThrow(/no kubernetes-models API/);
    await expect(kubernetesModel('apps/v1', 'Deploymnet')).rejects.toThrow(/no kind Deploymnet/);
  });

  it('a value of the wrong type and a misspelt field are both caught', async () => {
    await expect(validateAgainstKubernetesSchema(withField(the('Deployment', WEBHOOK), 'spec.replicas', 'two'))).rejects.toThrow(/replicas/);
    const misspelt = withField(the('Deployment', WEBHOOK), 'spec.template.spec.containers.0.readinesProbe', {});
    expect(unknownFields(misspelt)).toEqual(['.spec.template.spec.containers[0].readinesProbe']);
    await expect(validateAgainstKubernetesSchema(withField(the('DaemonSet', NODE_AGENT), 'spec.updateStrategy.rollingUpdate.maxUnavailable', true)))
      .rejects.toThrow(/maxUnavailable/);
    const misspeltHostPath = withField(the('DaemonSet', NODE_AGENT), 'spec.template.spec.volumes.0.hostPath.pth', '/');
    expect(unknownFields(misspeltHostPath)).toEqual(['.spec.template.spec.volumes[0].hostPath.pth']);
  });
});

// The objects the rest of the tests read; each exists once (the() throws otherwise).
const deployment = the('Deployment', WEBHOOK);
const podTemplate = deployment.spec!.template;
const podLabels = podTemplate.metadata!.labels!;
const pod = podTemplate.spec!;
const service = the('Service', WEBHOOK);
const webhookConfiguration = the('MutatingWebhookConfiguration', WEBHOOK);
const webhook = webhookConfiguration.webhooks![0];

const controllerDeployment = the('Deployment', CONTROLLER);
const controllerPodLabels = controllerDeployment.spec!.template.metadata!.labels!;
const controllerPod = controllerDeployment.spec!.template.spec!;

const daemonSet = the('DaemonSet', NODE_AGENT);
const agentPodLabels = daemonSet.spec!.template.metadata!.labels!;
const agentPod = daemonSet.spec!.template.spec!;

describe("the webhook's names and ports agree with each other and with its defaults (webhook/src/config.ts)", () => {
  const [container] = pod.containers;

  it('the objects carry the default names', () => {
    expect(service.metadata.name).toBe(defaults.serviceName);
    expect(webhookConfiguration.metadata.name).toBe(defaults.webhookConfigName);
    expect(all('Service').map((s) => s.metadata.name)).toEqual([defaults.serviceName]);
    expect(all('MutatingWebhookConfiguration').map((s) => s.metadata.name)).toEqual([defaults.webhookConfigName]);
  });

  it('the Deployment runs the webhook with its defaults: no args, its namespace from the downward API', () => {
    expect(pod.containers).toHaveLength(1);
    expect(container.command).toBeUndefined();
    expect(container.args).toBeUndefined();
    expect(webhookOptionSpecs.namespace.env).toBe('POD_NAMESPACE');
    expect(container.env).toContainEqual({ name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } });
  });

  it('the container listens on the default port, named https', () => {
    expect(container.ports).toEqual([{ name: 'https', containerPort: defaults.port, protocol: 'TCP' }]);
  });

  it('the Service forwards 443 to that port and selects the Deployment pods', () => {
    expect(service.spec?.ports).toEqual([{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }]);
    expect(selects({ matchLabels: service.spec?.selector }, podLabels)).toBe(true);
    expect(selects({ matchLabels: service.spec?.selector }, agentPodLabels)).toBe(false);
  });

  it('the MutatingWebhookConfiguration calls that Service on its port, at /mutate', () => {
    expect(webhook.clientConfig.service).toEqual({
      namespace: defaults.namespace,
      name: defaults.serviceName,
      path: '/mutate',
      port: service.spec?.ports?.[0].port,
    });
  });

  it('the image is cryo.invalid/webhook at the webhook package version, which Kustomization images: sets', () => {
    expect(container.image).toBe(`${UNSET_IMAGE_REGISTRY}/webhook:${packageJson('webhook').version}`);
  });
});

describe('the MutatingWebhookConfiguration', () => {
  it('has restore.cryo.dev first, for pod CREATE and the UPDATE that adds ephemeral containers (and migrate.cryo.dev, below)', () => {
    expect(webhookConfiguration.webhooks!.map((w) => w.name)).toEqual(['restore.cryo.dev', 'migrate.cryo.dev']);
    expect(webhook.name).toBe('restore.cryo.dev');
    expect(webhook.rules).toEqual([
      { operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' },
      // kubectl debug: an ephemeral container must not mount the hook directory (the webhook only checks, never patches, there).
      { operations: ['UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods/ephemeralcontainers'], scope: 'Namespaced' },
    ]);
  });

  it('is safe to call again and fails closed: sideEffects None, failurePolicy Fail, reinvocationPolicy IfNeeded', () => {
    expect(webhook.admissionReviewVersions).toEqual(['v1']);
    expect(webhook.sideEffects).toBe('None');
    expect(webhook.failurePolicy).toBe('Fail');
    expect(webhook.reinvocationPolicy).toBe('IfNeeded');
    expect(webhook.matchPolicy).toBe('Equivalent');
    expect(webhook.timeoutSeconds).toBeGreaterThanOrEqual(1);
    expect(webhook.timeoutSeconds).toBeLessThanOrEqual(30);
  });

  it('carries no caBundle: the webhook writes it at runtime', () => {
    expect(webhook.clientConfig.caBundle).toBeUndefined();
    expect(webhook.clientConfig.url).toBeUndefined();
  });

  it('never sees kube-system or its own namespace', () => {
    expect(webhook.namespaceSelector).toEqual({
      matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', defaults.namespace] }],
    });
  });

  it('is called only for pods with a cryo.dev/ annotation (a CEL matchCondition; CEL is not evaluated here)', () => {
    expect(webhook.matchConditions).toHaveLength(1);
    const { expression } = webhook.matchConditions![0];
    expect(ANNOTATION_PREFIX).toBe('cryo.dev/');
    expect(expression).toContain(`startsWith('${ANNOTATION_PREFIX}')`);
    expect(expression).toContain('object.metadata.annotations');
    // Guarded: a pod without annotations must evaluate to false, not to an error.
    expect(expression).toMatch(/^has\(object\.metadata\.annotations\) &&/);
  });
});

describe('the MutatingWebhookConfiguration: migrate.cryo.dev', () => {
  const migrate = webhookConfiguration.webhooks!.find((w) => w.name === 'migrate.cryo.dev')!;

  it('is sent pod creations only, at the same Service and path as restore.cryo.dev', () => {
    expect(migrate.rules).toEqual([{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }]);
    expect(migrate.clientConfig).toEqual({ service: webhook.clientConfig.service });
  });

  it('never blocks a workload: failurePolicy Ignore (the replacement then starts fresh and the Migration fails, saying so)', () => {
    expect(migrate.failurePolicy).toBe('Ignore');
    expect(migrate.sideEffects).toBe('None');
    expect(migrate.admissionReviewVersions).toEqual(['v1']);
    expect(migrate.matchPolicy).toBe('Equivalent');
    expect(migrate.reinvocationPolicy).toBe('IfNeeded');
    expect(migrate.timeoutSeconds).toBeGreaterThanOrEqual(1);
    expect(migrate.timeoutSeconds).toBeLessThanOrEqual(webhook.timeoutSeconds!);
  });

  it('sees the namespaces restore.cryo.dev sees', () => {
    expect(migrate.namespaceSelector).toEqual(webhook.namespaceSelector);
  });

  it('is called only for pods a ReplicaSet or StatefulSet controls (a CEL matchCondition; CEL is not evaluated here)', () => {
    expect(migrate.matchConditions).toHaveLength(1);
    const { expression } = migrate.matchConditions![0];
    // Guarded: a pod without ownerReferences, or a reference without controller, is false, not an error.
    expect(expression).toMatch(/^has\(object\.metadata\.ownerReferences\) &&/);
    expect(expression).toContain('has(r.controller) && r.controller');
    expect(expression).toContain("r.apiVersion == 'apps/v1'");
    expect(expression).toContain("r.kind == 'ReplicaSet'");
    expect(expression).toContain("r.kind == 'StatefulSet'");
    expect(migrate.objectSelector).toBeUndefined();
  });

  it('carries no caBundle: the webhook writes it into every entry at runtime', () => {
    expect(migrate.clientConfig.caBundle).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------
// RBAC: each component's ServiceAccount, the roles bound to it, and their rules
// ---------------------------------------------------------------------------------------

const roles = all('Role', 'ClusterRole');
const bindings = all('RoleBinding', 'ClusterRoleBinding');
type RoleObject = (typeof roles)[number];
type BindingObject = (typeof bindings)[number];

/** The role a binding grants: the ClusterRole of that name, or the Role of that name in the binding's namespace. */
function roleOf(binding: BindingObject): RoleObject | undefined {
  return roles.find((role) => role.kind === binding.roleRef.kind && role.metadata.name === binding.roleRef.name
    && (role.kind === 'ClusterRole' || role.metadata.namespace === binding.metadata.namespace));
}

/** Every rule granted to this ServiceAccount, with the role it comes from. */
function rulesGrantedTo(serviceAccount: Loaded<'ServiceAccount'>): { role: RoleObject; rule: IPolicyRule }[] {
  const isSubject = (binding: BindingObject) => (binding.subjects ?? []).some((s) => s.kind === 'ServiceAccount'
    && s.name === serviceAccount.metadata.name && s.namespace === serviceAccount.metadata.namespace);
  return bindings.filter(isSubject).flatMap((binding) => {
    const role = roleOf(binding);
    return role === undefined ? [] : (role.rules ?? []).map((rule) => ({ role, rule }));
  });
}

/** No rule gives more than it names: no wildcard, no nodes/proxy (every kubelet endpoint), no RBAC escalation. */
function expectNoBroadRules(rules: { rule: IPolicyRule }[]): void {
  expect(rules).not.toHaveLength(0);
  for (const { rule } of rules) {
    const everything = [...(rule.apiGroups ?? []), ...(rule.resources ?? []), ...rule.verbs, ...(rule.resourceNames ?? []), ...(rule.nonResourceURLs ?? [])];
    expect(everything.filter((word) => word.includes('*'))).toEqual([]);
    expect(rule.resources).not.toContain('nodes/proxy');
    expect(rule.nonResourceURLs).toBeUndefined();
    expect(rule.verbs.filter((verb) => ['escalate', 'bind', 'impersonate'].includes(verb))).toEqual([]);
  }
}

/**
 * The workloads whose pod templates may restore from a Checkpoint (CheckpointUsers lists them, in
 * any namespace, to keep what they use): list, cluster-wide, and nothing else on them.
 */
function expectWorkloadsListedOnly(rules: { role: RoleObject; rule: IPolicyRule }[]): void {
  const workloads = ['deployments', 'statefulsets', 'daemonsets', 'replicasets', 'jobs', 'cronjobs'];
  const workloadRules = rules.filter(({ rule }) => (rule.resources ?? []).some((r) => workloads.some((w) => r === w || r.startsWith(`${w}/`))));
  expect(workloadRules.map(({ rule }) => rule)).toEqual([
    { apiGroups: ['apps'], resources: ['deployments', 'statefulsets', 'daemonsets', 'replicasets'], verbs: ['list'] },
    { apiGroups: ['batch'], resources: ['jobs', 'cronjobs'], verbs: ['list'] },
  ]);
  for (const { role } of workloadRules) expect(role.kind).toBe('ClusterRole');
}

/** The component's roles are each bound once, to the component's ServiceAccount only, which its pods run as. */
function expectRolesBoundTo(component: string, podSpec: IPodSpec): void {
  const serviceAccount = the('ServiceAccount', component);
  expect(serviceAccount.metadata.namespace).toBe(COMPONENTS[component].namespace);
  expect(podSpec.serviceAccountName).toBe(serviceAccount.metadata.name);
  const ownRoles = roles.filter((r) => componentOf(r) === component);
  const ownBindings = bindings.filter((b) => componentOf(b) === component);
  expect(ownRoles).not.toHaveLength(0);
  expect(ownBindings.map((b) => `${b.roleRef.kind}/${b.roleRef.name}`).sort()).toEqual(ownRoles.map((r) => `${r.kind}/${r.metadata.name}`).sort());
  for (const binding of ownBindings) {
    expect(binding.roleRef.apiGroup).toBe('rbac.authorization.k8s.io');
    // A ClusterRoleBinding of a Role is refused; a RoleBinding keeps even a ClusterRole to its namespace.
    if (binding.kind === 'ClusterRoleBinding') expect(binding.roleRef.kind).toBe('ClusterRole');
    expect(componentOf(roleOf(binding)!)).toBe(component);
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: serviceAccount.metadata.name, namespace: serviceAccount.metadata.namespace }]);
  }
}

describe('RBAC: every role belongs to one component and is bound to that component only', () => {
  it('every role, binding and ServiceAccount names its component', () => {
    for (const object of [...roles, ...bindings, ...all('ServiceAccount')]) {
      expect(Object.keys(COMPONENTS), `${object.kind} ${object.metadata.name}`).toContain(componentOf(object));
    }
  });

  it('every binding grants a role of manifests/, and every role is bound exactly once', () => {
    for (const binding of bindings) expect(roleOf(binding), `${binding.kind} ${binding.metadata.name}`).toBeDefined();
    for (const role of roles) expect(bindings.filter((b) => roleOf(b) === role), `${role.kind} ${role.metadata.name}`).toHaveLength(1);
  });

  it('no rule anywhere has a wildcard, nodes/proxy, escalate, bind or impersonate', () => {
    expectNoBroadRules(roles.flatMap((role) => (role.rules ?? []).map((rule) => ({ rule }))));
  });
});

describe('RBAC grants the webhook what it uses and no more', () => {
  const rules = rulesGrantedTo(the('ServiceAccount', WEBHOOK));
  const rulesFor = (resource: string) => rules.filter(({ rule }) => rule.resources?.includes(resource));

  it('has no wildcard, no nodes/proxy and no escalate, bind or impersonate', () => {
    expectNoBroadRules(rules);
  });

  it('has rules for Checkpoints, Migrations, its MutatingWebhookConfiguration and Secrets only', () => {
    expect([...new Set(rules.flatMap(({ rule }) => rule.resources ?? []))].sort()).toEqual([CHECKPOINT_PLURAL, MIGRATION_PLURAL, 'mutatingwebhookconfigurations', 'secrets']);
  });

  it('watches Migrations (its cache: list and watch, no get), never writes them', () => {
    expect(rulesFor(MIGRATION_PLURAL).map(({ role, rule }) => [role.kind, rule])).toEqual([
      ['ClusterRole', { apiGroups: [CHECKPOINT_GROUP], resources: [MIGRATION_PLURAL], verbs: ['list', 'watch'] }],
    ]);
  });

  it('reads Checkpoints, never writes them', () => {
    const checkpointRules = rules.filter(({ rule }) => rule.apiGroups?.includes(CHECKPOINT_GROUP) && rule.resources?.includes(CHECKPOINT_PLURAL));
    expect(checkpointRules).toHaveLength(1);
    expect(checkpointRules[0].rule.resources).toEqual([CHECKPOINT_PLURAL]);
    expect(checkpointRules[0].rule.verbs).toEqual(['get', 'list', 'watch']);
  });

  it('touches only its own MutatingWebhookConfiguration: reads, watches and patches it', () => {
    const webhookRules = rulesFor('mutatingwebhookconfigurations');
    expect(webhookRules).toHaveLength(1);
    expect(webhookRules[0].rule.resourceNames).toEqual([defaults.webhookConfigName]);
    expect(webhookRules[0].rule.verbs).toEqual(['get', 'watch', 'patch']);
  });

  it('may create Secrets in its namespace, and read or replace only its TLS Secret', () => {
    const secretRules = rulesFor('secrets');
    for (const { role } of secretRules) {
      expect(role.kind).toBe('Role');
      expect(role.metadata.namespace).toBe(defaults.namespace);
    }
    const unnamed = secretRules.filter(({ rule }) => rule.resourceNames === undefined);
    const named = secretRules.filter(({ rule }) => rule.resourceNames !== undefined);
    // create is authorized before the object has a name, so resourceNames cannot limit it.
    expect(unnamed.map(({ rule }) => rule.verbs)).toEqual([['create']]);
    expect(named.map(({ rule }) => rule.resourceNames)).toEqual([[defaults.tlsSecretName]]);
    expect(named[0].rule.verbs).toEqual(['get', 'update']);
  });

  it('binds each role to the webhook ServiceAccount, which the Deployment runs as', () => {
    expectRolesBoundTo(WEBHOOK, pod);
  });
});

describe('RBAC grants the node agent what it uses and no more', () => {
  const rules = rulesGrantedTo(the('ServiceAccount', NODE_AGENT));
  const rulesOn = (test: (resource: string) => boolean) => rules.filter(({ rule }) => (rule.resources ?? []).some(test));
  const plain = ({ rule }: { rule: IPolicyRule }) => rule;

  it('has no wildcard, no nodes/proxy and no escalate, bind or impersonate', () => {
    expectNoBroadRules(rules);
  });

  it('may call the kubelet checkpoint API (nodes/checkpoint create) and read and patch Nodes (its restore-runtime label), nothing else on nodes', () => {
    const nodeRules = rulesOn((r) => r === 'nodes' || r.startsWith('nodes/'));
    // get and patch on nodes: the agent reads its Node's runtime version and sets or removes
    // one label with a merge patch. No list, watch, update, delete or nodes/status, and never
    // nodes/proxy; the ValidatingAdmissionPolicy below narrows patch to its own Node's cryo.dev/ labels.
    expect(nodeRules.map(plain)).toEqual([
      { apiGroups: [''], resources: ['nodes/checkpoint'], verbs: ['create'] },
      { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'patch'] },
    ]);
    for (const { role } of nodeRules) expect(role.kind).toBe('ClusterRole');
  });

  it('reads pods in every namespace (get, list, watch), never writes them nor reaches a subresource', () => {
    const podRules = rulesOn((r) => r === 'pods' || r.startsWith('pods/'));
    expect(podRules.map(plain)).toEqual([{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }]);
    expect(podRules[0].role.kind).toBe('ClusterRole');
  });

  it('lists and watches Checkpoints, patches them (its finalizer: the policy allows nothing else) and updates their status; it never creates or deletes one; it reads storage classes', () => {
    const checkpointRules = rules.filter(({ rule }) => rule.apiGroups?.includes(CHECKPOINT_GROUP));
    expect(checkpointRules.map(plain)).toEqual([
      { apiGroups: [CHECKPOINT_GROUP], resources: [CHECKPOINT_PLURAL], verbs: ['get', 'list', 'watch', 'patch'] },
      { apiGroups: [CHECKPOINT_GROUP], resources: [`${CHECKPOINT_PLURAL}/status`], verbs: ['update'] },
      // The class a Checkpoint names (get), or the default one (list); read-only.
      { apiGroups: [CHECKPOINT_GROUP], resources: [CHECKPOINT_STORAGE_CLASS_PLURAL], verbs: ['get', 'list'] },
    ]);
    for (const { rule } of rulesOn((r) => r === CHECKPOINT_PLURAL)) {
      expect(rule.verbs.filter((verb) => ['create', 'update', 'delete', 'deletecollection'].includes(verb))).toEqual([]);
    }
  });

  it('lists workloads (the pod templates retention keeps checkpoints for), and does nothing else with them', () => {
    expectWorkloadsListedOnly(rules);
  });

  it('creates events (events.k8s.io), and does nothing else with them', () => {
    expect(rulesOn((r) => r === 'events').map(plain)).toEqual([{ apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create'] }]);
  });

  it('gets Secrets (the push Secrets Checkpoints name) in its own namespace only, and never lists them', () => {
    const secretRules = rulesOn((r) => r === 'secrets');
    // Each Checkpoint names its own push Secret, so resourceNames cannot list them.
    expect(secretRules.map(plain)).toEqual([{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }]);
    expect(secretRules[0].role.kind).toBe('Role');
    expect(secretRules[0].role.metadata.namespace).toBe(agentDefaults.namespace);
  });

  it('has those rules and no other', () => {
    expect(rules.map(({ role, rule }) => `${role.kind} ${(rule.apiGroups ?? []).join(',')}/${(rule.resources ?? []).join(',')}`).sort()).toEqual([
      'ClusterRole /nodes',
      'ClusterRole /nodes/checkpoint',
      'ClusterRole /pods',
      'ClusterRole apps/deployments,statefulsets,daemonsets,replicasets',
      'ClusterRole batch/jobs,cronjobs',
      `ClusterRole ${CHECKPOINT_GROUP}/${CHECKPOINT_PLURAL}`,
      `ClusterRole ${CHECKPOINT_GROUP}/${CHECKPOINT_PLURAL}/status`,
      `ClusterRole ${CHECKPOINT_GROUP}/${CHECKPOINT_STORAGE_CLASS_PLURAL}`,
      'ClusterRole events.k8s.io/events',
      'Role /secrets',
    ]);
    for (const { rule } of rules) expect(rule.resourceNames).toBeUndefined();
  });

  it('binds each role to the node agent ServiceAccount, which the DaemonSet runs as', () => {
    expectRolesBoundTo(NODE_AGENT, agentPod);
  });
});

describe('RBAC grants the controller what it uses and no more', () => {
  const rules = rulesGrantedTo(the('ServiceAccount', CONTROLLER));
  const plain = ({ rule }: { rule: IPolicyRule }) => rule;
  const rulesOn = (resource: string) => rules.filter(({ rule }) => rule.resources?.includes(resource));

  it('has no wildcard, no nodes/proxy and no escalate, bind or impersonate', () => {
    expectNoBroadRules(rules);
  });

  it('reads Migrations (one list/watch, get after a lost race) and writes only their status', () => {
    expect(rulesOn(MIGRATION_PLURAL).map(plain)).toEqual([{ apiGroups: [CHECKPOINT_GROUP], resources: [MIGRATION_PLURAL], verbs: ['get', 'list', 'watch'] }]);
    expect(rulesOn(`${MIGRATION_PLURAL}/status`).map(plain)).toEqual([{ apiGroups: [CHECKPOINT_GROUP], resources: [`${MIGRATION_PLURAL}/status`], verbs: ['update'] }]);
  });

  it('reads CheckpointSchedules the same way and writes only their status', () => {
    expect(rulesOn(CHECKPOINT_SCHEDULE_PLURAL).map(plain)).toEqual([{ apiGroups: [CHECKPOINT_GROUP], resources: [CHECKPOINT_SCHEDULE_PLURAL], verbs: ['get', 'list', 'watch'] }]);
    expect(rulesOn(`${CHECKPOINT_SCHEDULE_PLURAL}/status`).map(plain)).toEqual([{ apiGroups: [CHECKPOINT_GROUP], resources: [`${CHECKPOINT_SCHEDULE_PLURAL}/status`], verbs: ['update'] }]);
  });

  it('creates, reads and deletes Checkpoints (a schedule prunes its own), never changes one or writes its status (node agents do)', () => {
    expect(rulesOn(CHECKPOINT_PLURAL).map(plain)).toEqual([{ apiGroups: [CHECKPOINT_GROUP], resources: [CHECKPOINT_PLURAL], verbs: ['create', 'get', 'list', 'watch', 'delete'] }]);
    expect(rulesOn(`${CHECKPOINT_PLURAL}/status`)).toEqual([]);
  });

  it('reads pods and creates them (a bare pod re-created), stops them only through evictions: nothing but Checkpoints is deleted, nothing patched', () => {
    expect(rulesOn('pods').map(plain)).toEqual([{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'create'] }]);
    expect(rulesOn('pods/eviction').map(plain)).toEqual([{ apiGroups: [''], resources: ['pods/eviction'], verbs: ['create'] }]);
    for (const { rule } of rules) {
      const forbidden = rule.resources?.join() === CHECKPOINT_PLURAL ? ['deletecollection', 'patch'] : ['delete', 'deletecollection', 'patch'];
      expect(rule.verbs.filter((verb) => forbidden.includes(verb)), rule.resources?.join()).toEqual([]);
    }
  });

  it('lists workloads (the pod templates schedule pruning keeps Checkpoints for), and does nothing else with them', () => {
    expectWorkloadsListedOnly(rules);
  });

  it('reads Nodes, claims and volumes, and nothing else of them', () => {
    expect(rulesOn('nodes').map(plain)).toEqual([{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list'] }]);
    expect(rulesOn('persistentvolumeclaims').map(plain)).toEqual([{ apiGroups: [''], resources: ['persistentvolumeclaims', 'persistentvolumes'], verbs: ['get'] }]);
  });

  it('creates events (events.k8s.io), and does nothing else with them', () => {
    expect(rulesOn('events').map(plain)).toEqual([{ apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create'] }]);
  });

  it('may create Leases in its namespace, and read or renew only its own', () => {
    const leaseRules = rulesOn('leases');
    for (const { role } of leaseRules) {
      expect(role.kind).toBe('Role');
      expect(role.metadata.namespace).toBe(controllerDefaults.namespace);
    }
    // create is authorized before the object has a name, so resourceNames cannot limit it.
    expect(leaseRules.map(plain)).toEqual([
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [controllerDefaults.leaseName], verbs: ['get', 'update'] },
    ]);
  });

  it('has those rules and no other', () => {
    expect(rules.map(({ role, rule }) => `${role.kind} ${(rule.apiGroups ?? []).join(',')}/${(rule.resources ?? []).join(',')}`).sort()).toEqual([
      'ClusterRole /nodes',
      'ClusterRole /persistentvolumeclaims,persistentvolumes',
      'ClusterRole /pods',
      'ClusterRole /pods/eviction',
      'ClusterRole apps/deployments,statefulsets,daemonsets,replicasets',
      'ClusterRole batch/jobs,cronjobs',
      `ClusterRole ${CHECKPOINT_GROUP}/${CHECKPOINT_PLURAL}`,
      `ClusterRole ${CHECKPOINT_GROUP}/${CHECKPOINT_SCHEDULE_PLURAL}`,
      `ClusterRole ${CHECKPOINT_GROUP}/${CHECKPOINT_SCHEDULE_PLURAL}/status`,
      `ClusterRole ${CHECKPOINT_GROUP}/${MIGRATION_PLURAL}`,
      `ClusterRole ${CHECKPOINT_GROUP}/${MIGRATION_PLURAL}/status`,
      'ClusterRole events.k8s.io/events',
      'Role coordination.k8s.io/leases',
      'Role coordination.k8s.io/leases',
    ]);
  });

  it('binds each role to the controller ServiceAccount, which the Deployment runs as', () => {
    expectRolesBoundTo(CONTROLLER, controllerPod);
  });
});

describe('the webhook Deployment runs unprivileged and stays available', () => {
  const containers = pod.containers.map((c) => [c.name, c] as const);

  it('runs as a non-root user with the RuntimeDefault seccomp profile', () => {
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.hostNetwork ?? false).toBe(false);
    expect(pod.hostPID ?? false).toBe(false);
    expect(pod.hostIPC ?? false).toBe(false);
  });

  it.each(containers)('container %s: read-only root, no privilege escalation, all capabilities dropped', (_, container) => {
    expect(container.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  it('mounts no host paths (the namespace enforces Pod Security restricted)', () => {
    for (const volume of pod.volumes ?? []) expect(Object.keys(volume).sort()).toEqual(['emptyDir', 'name']);
  });

  it.each(containers)('container %s: startup, readiness (/readyz) and liveness (/healthz) probes over HTTPS', (_, container) => {
    expect(container.startupProbe?.httpGet).toEqual({ path: '/healthz', port: 'https', scheme: 'HTTPS' });
    expect(container.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'https', scheme: 'HTTPS' });
    expect(container.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'https', scheme: 'HTTPS' });
  });

  it.each(containers)('container %s: requests and limits for CPU and memory', (_, container) => {
    expect(container.resources).toEqual({
      requests: { cpu: expect.any(String), memory: expect.any(String) },
      limits: { cpu: expect.any(String), memory: expect.any(String) },
    });
  });

  it('runs two replicas or more, on different nodes where it can, and never drops one for an upgrade', () => {
    expect(deployment.spec?.replicas).toBeGreaterThanOrEqual(2);
    expect(deployment.spec?.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    const terms = pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
    expect(terms.map((t) => t.podAffinityTerm.topologyKey)).toEqual(['kubernetes.io/hostname']);
    expect(selects(terms[0].podAffinityTerm.labelSelector, podLabels)).toBe(true);
    expect(pod.topologySpreadConstraints).not.toHaveLength(0);
    for (const constraint of pod.topologySpreadConstraints ?? []) {
      expect(constraint.whenUnsatisfiable).toBe('ScheduleAnyway');
      expect(selects(constraint.labelSelector, podLabels)).toBe(true);
    }
  });

  it('gives a stopping replica time to leave the Service endpoints, then to finish its admission calls', () => {
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(webhookOptionSpecs.shutdownDelaySeconds.default + webhook.timeoutSeconds!);
  });

  it('selects its own pods', () => {
    expect(selects(deployment.spec?.selector, podLabels)).toBe(true);
  });

  it('keeps one replica through voluntary disruptions: the PodDisruptionBudget selects its pods', () => {
    const budget = the('PodDisruptionBudget', WEBHOOK);
    expect(budget.spec?.minAvailable).toBe(1);
    expect(budget.spec?.minAvailable).toBeLessThan(deployment.spec!.replicas!);
    expect(selects(budget.spec?.selector, podLabels)).toBe(true);
  });
});

describe('the node agent DaemonSet', () => {
  const [container] = agentPod.containers;
  const CSI_ENDPOINT = '/var/lib/kubelet/plugins/hooks.cryo.dev/csi.sock';
  const mountAt = (path: string) => container.volumeMounts?.find((m) => m.mountPath === path);
  const volume = (name: string | undefined) => agentPod.volumes?.find((v) => v.name === name);

  it('runs on every Linux node: it tolerates every taint, and nothing else narrows where it schedules', () => {
    expect(agentPod.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(agentPod.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(agentPod.affinity).toBeUndefined();
    expect(agentPod.nodeName).toBeUndefined();
  });

  it('runs the agent with its defaults but two, and no args; its node, node IP and namespace from the downward API', () => {
    expect(agentPod.containers).toHaveLength(1);
    expect(agentPod.initContainers).toBeUndefined();
    expect(container.command).toBeUndefined();
    expect(container.args).toBeUndefined();
    expect([nodeAgentOptionSpecs.nodeName.env, nodeAgentOptionSpecs.nodeIp.env, nodeAgentOptionSpecs.namespace.env]).toEqual(['NODE_NAME', 'NODE_IP', 'POD_NAMESPACE']);
    expect(container.env).toEqual([
      { name: nodeAgentOptionSpecs.nodeName.env, valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
      { name: nodeAgentOptionSpecs.nodeIp.env, valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
      { name: nodeAgentOptionSpecs.namespace.env, valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      // The settings beyond the defaults: serve the hook socket's CSI driver (csi-driver.yaml) ...
      { name: nodeAgentOptionSpecs.csiEndpoint.env, value: CSI_ENDPOINT },
      // ... and a default store, the node's directory, so that a Checkpoint works after install.
      { name: nodeAgentOptionSpecs.directory.env, value: DEFAULT_STORE_DIR },
    ]);
    expect(container.envFrom).toBeUndefined();
  });

  it("serves the CSI driver hooks.cryo.dev: its socket in the kubelet's plugins directory, registered in plugins_registry, mounting into pods' volume directories", () => {
    expect(nodeAgentOptionSpecs.csiEndpoint.default).toBe('');
    expect(CSI_ENDPOINT).toBe(`/var/lib/kubelet/plugins/${HOOK_CSI_DRIVER}/csi.sock`);
    const plugin = mountAt(dirname(CSI_ENDPOINT));
    expect(volume(plugin?.name)?.hostPath).toEqual({ path: dirname(CSI_ENDPOINT), type: 'DirectoryOrCreate' });
    const registry = mountAt(nodeAgentOptionSpecs.kubeletRegistrationDir.default);
    expect(volume(registry?.name)?.hostPath).toEqual({ path: '/var/lib/kubelet/plugins_registry', type: 'Directory' });
    // The mounts the agent makes below the pods directory must reach the node: Bidirectional.
    const pods = mountAt(nodeAgentOptionSpecs.kubeletPodsDir.default);
    expect(volume(pods?.name)?.hostPath).toEqual({ path: '/var/lib/kubelet/pods', type: 'Directory' });
    expect(pods?.mountPropagation).toBe('Bidirectional');
    for (const mount of [plugin, registry, pods]) expect(mount?.readOnly ?? false).toBe(false);
  });

  it('declares the CSIDriver: inline ephemeral volumes only, with the pod named on mount, no attach and no fsGroup change', () => {
    const [driver] = all('CSIDriver');
    expect(all('CSIDriver')).toHaveLength(1);
    expect(driver.metadata.name).toBe(HOOK_CSI_DRIVER);
    expect(componentOf(driver)).toBe(NODE_AGENT);
    expect(driver.spec).toEqual({ attachRequired: false, podInfoOnMount: true, volumeLifecycleModes: ['Ephemeral'], fsGroupPolicy: 'None', requiresRepublish: false, storageCapacity: false });
  });

  it('lives in the namespace the agent reads push Secrets from by default', () => {
    expect(daemonSet.metadata.namespace).toBe(agentDefaults.namespace);
  });

  it('mounts its default store, --directory as set in env, from the host at the same path, writable, created when missing', () => {
    const mount = mountAt(DEFAULT_STORE_DIR);
    expect(mount, `a volumeMount at ${DEFAULT_STORE_DIR}`).toBeDefined();
    expect(volume(mount?.name)?.hostPath).toEqual({ path: DEFAULT_STORE_DIR, type: 'DirectoryOrCreate' });
    expect(mount?.readOnly ?? false).toBe(false);
    expect(mount?.subPath).toBeUndefined();
    expect(nodeAgentOptionSpecs.directory.default).toBe('');
  });

  it.each([
    ['--host-hooks-dir', agentDefaults.hostHooksDir],
    ['--kubelet-checkpoints-dir', agentDefaults.kubeletCheckpointsDir],
  ])('mounts the %s default (%s) from the host at the same path, writable, created when missing', (flag, path) => {
    const mount = mountAt(path);
    expect(mount, `a volumeMount at ${path}`).toBeDefined();
    expect(volume(mount?.name)?.hostPath).toEqual({ path, type: 'DirectoryOrCreate' });
    // The agent creates hook sockets in one and removes the kubelet's archives from the other.
    expect(mount?.readOnly ?? false).toBe(false);
    expect(mount?.subPath).toBeUndefined();
    expect(Object.values(nodeAgentOptionSpecs).find((spec) => spec.flag === flag)?.default).toBe(path);
  });

  it.each(agentDefaults.criuLogDirs.map((path) => [path]))('mounts the --criu-log-dirs default (%s) from the host at the same path, read-only, created when missing', (path) => {
    const mount = mountAt(path);
    expect(mount, `a volumeMount at ${path}`).toBeDefined();
    expect(volume(mount?.name)?.hostPath).toEqual({ path, type: 'DirectoryOrCreate' });
    // The agent only reads CRIU's logs there; the runtime's task bundles are none of its business.
    expect(mount?.readOnly).toBe(true);
    // Containers' rootfs mounts below containerd's must go when containerd unmounts them on the
    // host; CRI-O's has none and refuses HostToContainer there (see the manifest).
    expect(mount?.mountPropagation).toBe(path.startsWith('/run/containerd/') ? 'HostToContainer' : undefined);
    expect(mount?.subPath).toBeUndefined();
  });

  it.each(agentDefaults.runtimeConfigFiles.map((path) => [path]))('mounts the directory of %s (a runtime config default) from the host at the same path, read-only', (path) => {
    // The directory, not the file: an edited file is seen, and a missing one is no failed mount.
    const mount = mountAt(dirname(path));
    expect(mount, `a volumeMount at ${dirname(path)}`).toBeDefined();
    expect(volume(mount?.name)?.hostPath).toEqual({ path: mount!.mountPath, type: 'DirectoryOrCreate' });
    // The agent only reads the switch that turns restore on; the runtime's config stays the runtime's.
    expect(mount?.readOnly).toBe(true);
    expect(mount?.subPath).toBeUndefined();
  });

  it('mounts no other host path; /tmp is an emptyDir', () => {
    const hostPaths = (agentPod.volumes ?? []).filter((v) => v.hostPath !== undefined).map((v) => v.hostPath!.path).sort();
    const runtimeConfigDirs = [...new Set(agentDefaults.runtimeConfigFiles.map((path) => dirname(path)))];
    expect(runtimeConfigDirs).toEqual(['/etc/containerd', '/etc/crio']);
    const csiPaths = [nodeAgentOptionSpecs.kubeletPodsDir.default, dirname(CSI_ENDPOINT), nodeAgentOptionSpecs.kubeletRegistrationDir.default];
    expect(hostPaths).toEqual([agentDefaults.hostHooksDir, agentDefaults.kubeletCheckpointsDir, DEFAULT_STORE_DIR, ...agentDefaults.criuLogDirs, ...runtimeConfigDirs, ...csiPaths].sort());
    for (const v of agentPod.volumes ?? []) expect(Object.keys(v).sort(), v.name).toEqual(v.hostPath !== undefined ? ['hostPath', 'name'] : ['emptyDir', 'name']);
    expect(volume(mountAt('/tmp')?.name)?.emptyDir).toBeDefined();
    expect(container.volumeMounts).toHaveLength(4 + agentDefaults.criuLogDirs.length + runtimeConfigDirs.length + csiPaths.length);
  });

  it('uses the same hook directory as the webhook, which mounts each pod its part of it', () => {
    expect(webhookOptionSpecs.hostHooksDir.default).toBe(agentDefaults.hostHooksDir);
  });

  it('listens on the default ports, http and the directory registry view, and probes /readyz and /healthz there', () => {
    expect(container.ports).toEqual([
      { name: 'http', containerPort: agentDefaults.port, protocol: 'TCP' },
      { name: 'dir-registry', containerPort: Number(agentDefaults.directoryRegistryAddress.split(':')[1]), protocol: 'TCP' },
    ]);
    expect(container.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http', scheme: 'HTTP' });
    expect(container.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'http', scheme: 'HTTP' });
  });

  it('runs as root (for the host files), privileged for the CSI driver (its mounts, Bidirectional), with a read-only root and RuntimeDefault seccomp', () => {
    expect(agentPod.securityContext).toEqual({ runAsUser: 0, runAsGroup: 0, seccompProfile: { type: 'RuntimeDefault' } });
    expect(container.securityContext).toEqual({
      runAsUser: 0,
      runAsGroup: 0,
      readOnlyRootFilesystem: true,
      privileged: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    // Only the agent's own namespace allows that; every app namespace may enforce restricted.
    expect(COMPONENTS[NODE_AGENT].podSecurity).toBe('privileged');
    // The host's network, for the directory store's registry view on the node's loopback
    // (where the runtime pulls from); nothing else of the host's.
    expect(agentPod.hostNetwork).toBe(true);
    expect(agentPod.dnsPolicy).toBe('ClusterFirstWithHostNet');
    expect(agentPod.hostPID ?? false).toBe(false);
    expect(agentPod.hostIPC ?? false).toBe(false);
  });

  it('requests CPU and memory and limits memory', () => {
    expect(container.resources).toEqual({
      requests: { cpu: expect.any(String), memory: expect.any(String) },
      limits: { memory: expect.any(String) },
    });
  });

  it('updates one node at a time', () => {
    expect(daemonSet.spec?.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
  });

  it('gives a stopping agent time to finish the checkpoint it runs (hooks, then the kubelet)', () => {
    expect(agentPod.terminationGracePeriodSeconds).toBeGreaterThan(
      nodeAgentOptionSpecs.hookPrepareTimeoutSeconds.default + nodeAgentOptionSpecs.checkpointTimeoutSeconds.default,
    );
  });

  it('selects its own pods, and not the webhook pods', () => {
    expect(selects(daemonSet.spec?.selector, agentPodLabels)).toBe(true);
    expect(selects(daemonSet.spec?.selector, podLabels)).toBe(false);
    expect(selects(deployment.spec?.selector, agentPodLabels)).toBe(false);
  });

  it('the image is cryo.invalid/node-agent at the node-agent package version, which Kustomization images: sets', () => {
    expect(container.image).toBe(`${UNSET_IMAGE_REGISTRY}/node-agent:${packageJson('node-agent').version}`);
  });
});


describe('the controller Deployment runs unprivileged, two replicas of which one leads', () => {
  const [container] = controllerPod.containers;

  it('runs the controller with its defaults: no args; its namespace and name (its leader-election identity) from the downward API', () => {
    expect(controllerPod.containers).toHaveLength(1);
    expect(container.command).toBeUndefined();
    expect(container.args).toBeUndefined();
    expect([controllerOptionSpecs.namespace.env, controllerOptionSpecs.leaderElectionIdentity.env]).toEqual(['POD_NAMESPACE', 'POD_NAME']);
    expect(container.env).toEqual([
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    ]);
    expect(controllerDeployment.metadata.namespace).toBe(controllerDefaults.namespace);
  });

  it('listens on the default port, named http, and probes /readyz and /healthz there', () => {
    expect(container.ports).toEqual([{ name: 'http', containerPort: controllerDefaults.port, protocol: 'TCP' }]);
    expect(container.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http', scheme: 'HTTP' });
    expect(container.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'http', scheme: 'HTTP' });
  });

  it('runs as the webhook does: non-root, read-only root, no privilege escalation, all capabilities dropped, RuntimeDefault seccomp, no host paths', () => {
    expect(controllerPod.securityContext).toEqual(pod.securityContext);
    expect(container.securityContext).toEqual(pod.containers[0].securityContext);
    expect(controllerPod.hostNetwork ?? false).toBe(false);
    expect(controllerPod.hostPID ?? false).toBe(false);
    for (const volume of controllerPod.volumes ?? []) expect(Object.keys(volume).sort()).toEqual(['emptyDir', 'name']);
  });

  it('requests and limits CPU and memory', () => {
    expect(container.resources).toEqual({
      requests: { cpu: expect.any(String), memory: expect.any(String) },
      limits: { cpu: expect.any(String), memory: expect.any(String) },
    });
  });

  it('runs two replicas on different nodes where it can, never drops one for an upgrade, and keeps one through drains', () => {
    expect(controllerDeployment.spec?.replicas).toBe(2);
    expect(controllerDeployment.spec?.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    const terms = controllerPod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
    expect(terms.map((t) => t.podAffinityTerm.topologyKey)).toEqual(['kubernetes.io/hostname']);
    expect(selects(terms[0].podAffinityTerm.labelSelector, controllerPodLabels)).toBe(true);
    const budget = the('PodDisruptionBudget', CONTROLLER);
    expect(budget.spec?.minAvailable).toBe(1);
    expect(selects(budget.spec?.selector, controllerPodLabels)).toBe(true);
  });

  it('gives a stopping replica time to release the Lease', () => {
    expect(controllerPod.terminationGracePeriodSeconds).toBeGreaterThan(controllerOptionSpecs.retryPeriodSeconds.default);
  });

  it('selects its own pods only', () => {
    expect(selects(controllerDeployment.spec?.selector, controllerPodLabels)).toBe(true);
    expect(selects(controllerDeployment.spec?.selector, podLabels)).toBe(false);
    expect(selects(deployment.spec?.selector, controllerPodLabels)).toBe(false);
    expect(selects({ matchLabels: service.spec?.selector }, controllerPodLabels)).toBe(false);
  });

  it('the image is cryo.invalid/controller at the controller package version, which Kustomization images: sets', () => {
    expect(container.image).toBe(`${UNSET_IMAGE_REGISTRY}/controller:${packageJson('controller').version}`);
  });
});

// ---------------------------------------------------------------------------------------
// What an install on a user's cluster needs of every workload (README, "Install on a cluster")
// ---------------------------------------------------------------------------------------

/**
 * The workloads and the priority each runs at. The node agent: evicted last under node pressure,
 * since without it a node's hook sockets and checkpoints stop. The webhook: failurePolicy Fail,
 * so while it is down every restoring pod is refused; the controller: drains wait on its
 * Migrations. Both small, so they may preempt apps, below the node-level add-ons.
 */
const WORKLOADS = [
  { name: WEBHOOK, file: 'webhook-deployment.yaml', podSpec: pod, priorityClassName: 'system-cluster-critical' },
  { name: NODE_AGENT, file: 'node-agent-daemonset.yaml', podSpec: agentPod, priorityClassName: 'system-node-critical' },
  { name: CONTROLLER, file: 'operator-deployment.yaml', podSpec: controllerPod, priorityClassName: 'system-cluster-critical' },
];

/** An image reference without its tag or digest: the name kustomize images: matches. */
function imageName(image: string): string {
  const withoutDigest = image.split('@')[0];
  const lastSlash = withoutDigest.lastIndexOf('/');
  const colon = withoutDigest.indexOf(':', lastSlash + 1);
  return colon === -1 ? withoutDigest : withoutDigest.slice(0, colon);
}

/** Bytes of a memory quantity as the manifests write them (Mi or Gi). */
function mebibytes(quantity: string | number | undefined): number {
  const match = /^(\d+)(Mi|Gi)$/.exec(String(quantity));
  if (match === null) throw new Error(`memory quantity "${String(quantity)}": expected <n>Mi or <n>Gi`);
  return Number(match[1]) * (match[2] === 'Gi' ? 1024 : 1);
}

const allContainers = (podSpec: IPodSpec) => [...(podSpec.initContainers ?? []), ...podSpec.containers];

describe('every workload installs on a user’s cluster', () => {
  it.each(WORKLOADS)('$name runs on Linux nodes only (nodeSelector kubernetes.io/os: linux): its image is a Linux one', ({ podSpec }) => {
    expect(podSpec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
  });

  it.each(WORKLOADS)('$name runs at priorityClassName $priorityClassName', ({ podSpec, priorityClassName }) => {
    expect(podSpec.priorityClassName).toBe(priorityClassName);
    // The class decides; a number of its own would be refused by the Priority admission plugin.
    expect(podSpec.priority).toBeUndefined();
  });

  it.each(WORKLOADS)('$name requests CPU and memory, limits memory at or above the request, and says where the figures come from', ({ file, podSpec }) => {
    for (const container of allContainers(podSpec)) {
      const { requests, limits } = container.resources ?? {};
      expect(requests?.cpu, container.name).toBeDefined();
      expect(mebibytes(limits?.memory)).toBeGreaterThanOrEqual(mebibytes(requests?.memory));
    }
    // The comment above resources: names the measurement (docs: README, "Figures measured").
    const text = readFileSync(join(REPO_ROOT, 'manifests', file), 'utf8');
    const lines = text.split('\n');
    const at = lines.findIndex((line) => /^\s+resources:$/.test(line));
    const comment = lines.slice(0, at).reverse().findIndex((line) => !/^\s*#/.test(line));
    expect(lines.slice(at - comment, at).join('\n'), `${file}: the comment above resources:`).toMatch(/RSS/);
  });

  it('no image resolves to a registry namespace that is not the user’s: every one names cryo.invalid, which resolves nowhere', () => {
    // A name without a registry host is the default public registry's: cryo/webhook would be someone else's image.
    expect(registryHostOf('cryo/webhook:0.1.0')).toBeUndefined();
    const images = WORKLOADS.flatMap(({ podSpec }) => allContainers(podSpec).map((c) => c.image!));
    expect(images).toHaveLength(3);
    for (const image of images) expect(registryHostOf(image), image).toBe(UNSET_IMAGE_REGISTRY);
    expect(UNSET_IMAGE_REGISTRY.endsWith('.invalid')).toBe(true);
  });

  it('Kustomization images: names each workload image once, at its package version, and sets none to a registry namespace that is not the user’s', () => {
    const images = readKustomization().images as { name: string; newName?: string; newTag?: string; digest?: string }[];
    const workloadImages = WORKLOADS.flatMap(({ podSpec }) => allContainers(podSpec).map((c) => c.image!));
    expect(images.map((i) => i.name).sort()).toEqual(workloadImages.map(imageName).sort());
    for (const image of images) {
      // Where the user's own registry goes (npm run images writes it); never a name without a registry host.
      expect(registryHostOf(image.newName ?? ''), image.name).toBeDefined();
      if (image.digest !== undefined) expect(image.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      else expect(image.newTag, image.name).toBe(packageJson(image.name.split('/').at(-1)!).version);
    }
  });
});

// ---------------------------------------------------------------------------------------
// The Checkpoint CRD against common/src/api/checkpoint.ts
// ---------------------------------------------------------------------------------------

/**
 * For each TypeScript type of the Checkpoint API, its fields and whether each is required.
 * tsc checks these literals against the types (a field missing, extra or with the wrong
 * optionality does not compile); the tests check them against the CRD schema.
 */
type FieldsOf<T> = { [K in keyof T]-?: Partial<Pick<T, K>> extends Pick<T, K> ? 'optional' : 'required' };

const CHECKPOINT_FIELDS = { apiVersion: 'optional', kind: 'optional', metadata: 'optional', spec: 'required', status: 'optional' } satisfies FieldsOf<Checkpoint>;
const SPEC_FIELDS = { podName: 'required', containers: 'optional', storageClassName: 'optional', storage: 'optional', reason: 'optional', purpose: 'optional' } satisfies FieldsOf<CheckpointSpec>;
const STORAGE_FIELDS = { registry: 'optional', directory: 'optional' } satisfies FieldsOf<CheckpointStorage>;
const REGISTRY_FIELDS = { repository: 'required', pushSecretName: 'optional' } satisfies FieldsOf<NonNullable<CheckpointStorage['registry']>>;
const DIRECTORY_FIELDS = { path: 'required', shared: 'optional' } satisfies FieldsOf<NonNullable<CheckpointStorage['directory']>>;
const STATUS_FIELDS = {
  phase: 'optional',
  nodeName: 'optional',
  startTime: 'optional',
  completionTime: 'optional',
  message: 'optional',
  reason: 'optional',
  retryable: 'optional',
  storage: 'optional',
  totalSize: 'optional',
  totalSizeBytes: 'optional',
  containers: 'optional',
  podCheckpoint: 'optional',
  podTemplate: 'optional',
  conditions: 'optional',
  observedGeneration: 'optional',
} satisfies FieldsOf<CheckpointStatus>;
const POD_CHECKPOINT_FIELDS = { reference: 'required', referenceType: 'required' } satisfies FieldsOf<NonNullable<CheckpointStatus['podCheckpoint']>>;
const STATUS_STORAGE_FIELDS = { type: 'required', shared: 'optional', className: 'optional', pullSecretName: 'optional' } satisfies FieldsOf<NonNullable<CheckpointStatus['storage']>>;
const CONTAINER_FIELDS = {
  name: 'required',
  restoreReference: 'required',
  referenceType: 'required',
  sizeBytes: 'optional',
  baseImage: 'optional',
  mountDestinations: 'optional',
  runtime: 'optional',
  checkpointDurationSeconds: 'optional',
  storeDurationSeconds: 'optional',
} satisfies FieldsOf<CheckpointedContainer>;
const CONDITION_FIELDS = {
  type: 'required',
  status: 'required',
  observedGeneration: 'optional',
  lastTransitionTime: 'required',
  reason: 'required',
  message: 'required',
} satisfies FieldsOf<V1Condition>;

/** Every object node of the schema, by path, with the TypeScript fields it must have. */
const FIELDS_BY_SCHEMA_PATH: Record<string, Record<string, 'required' | 'optional'>> = {
  '': CHECKPOINT_FIELDS,
  '.spec': SPEC_FIELDS,
  '.spec.storage': STORAGE_FIELDS,
  '.spec.storage.registry': REGISTRY_FIELDS,
  '.spec.storage.directory': DIRECTORY_FIELDS,
  '.status': STATUS_FIELDS,
  '.status.storage': STATUS_STORAGE_FIELDS,
  '.status.containers[]': CONTAINER_FIELDS,
  '.status.podCheckpoint': POD_CHECKPOINT_FIELDS,
  '.status.conditions[]': CONDITION_FIELDS,
};

// Union members, listed so that tsc rejects a missing or extra one.
const REFERENCE_TYPES = Object.keys({ image: true, archive: true } satisfies Record<RestoreReferenceType, true>);
const POD_REFERENCE_TYPES = Object.keys({ 'image-index': true, file: true } satisfies Record<NonNullable<CheckpointStatus['podCheckpoint']>['referenceType'], true>);
const STORAGE_TYPES = Object.keys({ registry: true, directory: true } satisfies Record<NonNullable<CheckpointStatus['storage']>['type'], true>);

/** What goes over the wire: JSON, as the client serializes it (Dates become RFC 3339 strings). */
function wire(checkpoint: Checkpoint): unknown {
  return JSON.parse(JSON.stringify(checkpoint));
}

const registryCheckpoint: Checkpoint = {
  apiVersion: CHECKPOINT_API_VERSION,
  kind: CHECKPOINT_KIND,
  metadata: { name: 'web-0-before-upgrade', namespace: 'shop' },
  spec: {
    podName: 'web-0',
    containers: ['app', 'cache'],
    storage: { registry: { repository: '10.0.0.5:5000/checkpoints/web', pushSecretName: 'checkpoint-push' } },
    reason: 'node maintenance',
  },
  status: {
    phase: 'Succeeded',
    nodeName: 'worker-2',
    startTime: '2026-01-05T10:00:00Z',
    completionTime: '2026-01-05T10:00:04.512Z',
    message: 'checkpointed 2 containers',
    storage: { type: 'registry' },
    totalSize: '61.2 MiB',
    totalSizeBytes: 64_172_851,
    containers: [
      {
        name: 'app',
        restoreReference: `10.0.0.5:5000/checkpoints/web@sha256:${'a'.repeat(64)}`,
        referenceType: 'image',
        sizeBytes: 52_428_800,
        baseImage: 'shop/web:2.3.1',
        mountDestinations: ['/var/cache/web'],
        runtime: 'containerd',
        checkpointDurationSeconds: 1.42,
        storeDurationSeconds: 2.87,
      },
      {
        name: 'cache',
        restoreReference: `10.0.0.5:5000/checkpoints/web@sha256:${'b'.repeat(64)}`,
        referenceType: 'image',
        sizeBytes: 11_744_051,
      },
    ],
    conditions: [
      {
        type: 'Stored',
        status: 'True',
        reason: 'Pushed',
        message: 'pushed 2 images',
        lastTransitionTime: new Date('2026-01-05T10:00:04Z'),
        observedGeneration: 1,
      },
    ],
    observedGeneration: 1,
  },
};

const directoryCheckpoint: Checkpoint = {
  apiVersion: CHECKPOINT_API_VERSION,
  kind: CHECKPOINT_KIND,
  metadata: { name: 'db-0', namespace: 'shop' },
  spec: { podName: 'db-0', storage: { directory: { path: '/mnt/checkpoints', shared: true } } },
  status: {
    phase: 'Succeeded',
    storage: { type: 'directory', shared: true },
    containers: [{ name: 'db', restoreReference: '/mnt/checkpoints/shop/db-0/db.tar', referenceType: 'archive' }],
  },
};

/** A CRD of manifests/, its one version's openAPIV3Schema, and its schema nodes by path (`.spec.containers[]` style). */
function crdSchema(name: string) {
  const crd = the('CustomResourceDefinition', name);
  const [version] = crd.spec.versions;
  const schema = version.schema!.openAPIV3Schema as SchemaNode;
  const node = (path: string): SchemaNode => {
    const found = [...schemaNodes(schema)].find(([p]) => p === path);
    expect(found, `schema node ${path}`).toBeDefined();
    return found![1];
  };
  return { crd, version, schema, node };
}

/** The schema's object nodes are exactly these paths, each with exactly these fields, required as the TypeScript types require them. */
function expectFieldsOfTypes(schema: SchemaNode, fieldsByPath: Record<string, Record<string, 'required' | 'optional'>>): void {
  const nodes = new Map([...schemaNodes(schema)].filter(([, n]) => n.properties !== undefined));
  expect([...nodes.keys()].sort()).toEqual(Object.keys(fieldsByPath).sort());
  for (const [path, fields] of Object.entries(fieldsByPath)) {
    const { properties, required = [] } = nodes.get(path)!;
    expect(Object.keys(properties!).sort(), `fields of ${path || '(root)'}`).toEqual(Object.keys(fields).sort());
    expect([...required].sort(), `required fields of ${path || '(root)'}`).toEqual(Object.entries(fields).filter(([, r]) => r === 'required').map(([name]) => name).sort());
  }
}

describe('the Checkpoint CRD', () => {
  const { crd, version, schema, node } = crdSchema(`${CHECKPOINT_PLURAL}.${CHECKPOINT_GROUP}`);

  it('names the API as common/src/api/checkpoint.ts does', () => {
    expect(crd.metadata.name).toBe(`${CHECKPOINT_PLURAL}.${CHECKPOINT_GROUP}`);
    expect(crd.spec.group).toBe(CHECKPOINT_GROUP);
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toEqual({
      kind: CHECKPOINT_KIND,
      listKind: `${CHECKPOINT_KIND}List`,
      plural: CHECKPOINT_PLURAL,
      singular: 'checkpoint',
      shortNames: ['ckpt'],
      categories: ['cryo'],
    });
  });

  it('serves and stores one version, with a status subresource', () => {
    expect(crd.spec.versions).toHaveLength(1);
    expect(version).toMatchObject({ name: CHECKPOINT_VERSION, served: true, storage: true, subresources: { status: {} } });
  });

  it('shows pod, phase, size, reason, node and message (the store progress while storing) (wide) and age in kubectl get', () => {
    expect(version.additionalPrinterColumns).toEqual([
      { name: 'Pod', type: 'string', jsonPath: '.spec.podName' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'Size', type: 'string', jsonPath: '.status.totalSize' },
      { name: 'Reason', type: 'string', jsonPath: '.status.reason', priority: 1 },
      { name: 'Node', type: 'string', jsonPath: '.status.nodeName', priority: 1 },
      { name: 'Message', type: 'string', jsonPath: '.status.message', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ]);
  });

  it('has a structural schema', () => {
    expect(structuralSchemaProblems(schema)).toEqual([]);
  });

  it('has exactly the fields of the TypeScript types, required where they are required', () => {
    expectFieldsOfTypes(schema, FIELDS_BY_SCHEMA_PATH);
  });

  it('allows exactly the values of the TypeScript unions', () => {
    expect(node('.status.phase').enum).toEqual([...CHECKPOINT_PHASES]);
    expect(node('.spec.purpose').enum).toEqual([...CHECKPOINT_PURPOSES]);
    expect(node('.status.containers[].referenceType').enum).toEqual(REFERENCE_TYPES);
    expect(node('.status.containers[].runtime').enum).toEqual([...CONTAINER_RUNTIMES]);
    expect(node('.status.storage.type').enum).toEqual(STORAGE_TYPES);
    expect(node('.status.podCheckpoint.referenceType').enum).toEqual(POD_REFERENCE_TYPES);
  });

  it('keys the containers and conditions lists by name and type, and treats spec.containers as a set', () => {
    expect(node('.status.containers')).toMatchObject({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] });
    expect(node('.status.conditions')).toMatchObject({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] });
    expect(node('.spec.containers')['x-kubernetes-list-type']).toBe('set');
  });

  it('makes spec immutable and storage name exactly one kind, with CEL rules whose messages say so', () => {
    // CEL needs a kube-apiserver; here the rules are checked to be there, as written.
    expect(node('.spec')['x-kubernetes-validations']).toEqual([
      { rule: 'self == oldSelf', message: expect.stringMatching(/spec is immutable/) },
      { rule: '!(has(self.storageClassName) && has(self.storage))', message: expect.stringMatching(/either a storageClassName or a storage, not both/) },
    ]);
    expect(node('.spec.storage')['x-kubernetes-validations']).toEqual([
      { rule: 'has(self.registry) != has(self.directory)', message: expect.stringMatching(/exactly one of registry or directory/) },
    ]);
  });

  it('bounds every string and list in spec, which keeps the CEL cost of self == oldSelf small', () => {
    for (const [path, n] of schemaNodes(node('.spec'))) {
      if (n.type === 'string') expect(n.maxLength, `.spec${path}`).toBeDefined();
      if (n.type === 'array') expect(n.maxItems, `.spec${path}`).toBeDefined();
    }
  });

  describe('validates Checkpoints as the kube-apiserver would (CEL aside)', () => {
    const validate = compileSchema(schema);
    const check = (object: unknown): string => (validate(object) ? 'valid' : formatErrors(validate.errors));

    it.each([
      ['one stored in a registry', registryCheckpoint],
      ['one stored in a shared directory', directoryCheckpoint],
      ['one that names only its pod (cluster default storage)', { ...directoryCheckpoint, spec: { podName: 'db-0' }, status: undefined }],
    ])('accepts %s', (_, checkpoint) => {
      expect(check(wire(checkpoint))).toBe('valid');
    });

    it.each([
      ['no spec.podName', registryCheckpoint, 'spec.podName', REMOVE, /^\/spec must have required property 'podName'$/],
      ['a podName that is no DNS subdomain', registryCheckpoint, 'spec.podName', 'Web_0', /^\/spec\/podName must match pattern/],
      ['a container listed by an invalid name', registryCheckpoint, 'spec.containers', ['App'], /^\/spec\/containers\/0 must match pattern/],
      ['an empty container list', registryCheckpoint, 'spec.containers', [], /^\/spec\/containers must NOT have fewer than 1 items$/],
      ['a registry repository with a tag', registryCheckpoint, 'spec.storage.registry.repository', 'checkpoints/web:v1', /^\/spec\/storage\/registry\/repository must match pattern/],
      ['a registry repository with a digest', registryCheckpoint, 'spec.storage.registry.repository', `checkpoints/web@sha256:${'c'.repeat(64)}`, /^\/spec\/storage\/registry\/repository must match pattern/],
      ['a registry without repository', registryCheckpoint, 'spec.storage.registry', {}, /^\/spec\/storage\/registry must have required property 'repository'$/],
      ['a relative directory path', directoryCheckpoint, 'spec.storage.directory.path', 'checkpoints', /^\/spec\/storage\/directory\/path must match pattern/],
      ['a reason over 1024 characters', registryCheckpoint, 'spec.reason', 'x'.repeat(1025), /^\/spec\/reason must NOT have more than 1024 characters$/],
      ['a field the API does not have', registryCheckpoint, 'spec.podname', 'web-0', /^\/spec must NOT have additional properties$/],
      ['a phase that does not exist', registryCheckpoint, 'status.phase', 'Done', /^\/status\/phase must be equal to one of the allowed values$/],
      ['a negative totalSizeBytes', registryCheckpoint, 'status.totalSizeBytes', -1, /^\/status\/totalSizeBytes must be >= 0$/],
      ['a fractional totalSizeBytes', registryCheckpoint, 'status.totalSizeBytes', 1.5, /^\/status\/totalSizeBytes must be integer/],
      ['a runtime Cryo does not restore on', registryCheckpoint, 'status.containers.0.runtime', 'docker', /^\/status\/containers\/0\/runtime must be equal to one of the allowed values$/],
      ['an unknown referenceType', directoryCheckpoint, 'status.containers.0.referenceType', 'tarball', /^\/status\/containers\/0\/referenceType must be equal to one of the allowed values$/],
      ['a container without restoreReference', directoryCheckpoint, 'status.containers.0.restoreReference', REMOVE, /^\/status\/containers\/0 must have required property 'restoreReference'$/],
      ['a startTime that is no date-time', registryCheckpoint, 'status.startTime', 'yesterday', /^\/status\/startTime must match format "date-time"$/],
      ['a condition status other than True, False or Unknown', registryCheckpoint, 'status.conditions.0.status', 'Yes', /^\/status\/conditions\/0\/status must be equal to one of the allowed values$/],
      ['an unknown storage type', directoryCheckpoint, 'status.storage.type', 's3', /^\/status\/storage\/type must be equal to one of the allowed values$/],
    ] as const)('refuses %s', (_, base, path, value, error) => {
      expect(check(withField(wire(base), path, value))).toMatch(error);
    });
  });
});

// ---------------------------------------------------------------------------------------
// The CheckpointStorageClass CRD against common/src/api/checkpoint-storage-class.ts
// ---------------------------------------------------------------------------------------

const CLASS_FIELDS = { apiVersion: 'optional', kind: 'optional', metadata: 'optional', spec: 'required' } satisfies FieldsOf<CheckpointStorageClass>;
const CLASS_SPEC_FIELDS = { namespaces: 'required', registry: 'optional', directory: 'optional' } satisfies FieldsOf<CheckpointStorageClassSpec>;
const CLASS_REGISTRY_FIELDS = { repository: 'required', pushSecretName: 'optional', pullSecretName: 'optional', layerCompression: 'optional' } satisfies FieldsOf<NonNullable<CheckpointStorageClassSpec['registry']>>;
const CLASS_DIRECTORY_FIELDS = { path: 'required', shared: 'optional' } satisfies FieldsOf<NonNullable<CheckpointStorageClassSpec['directory']>>;
const CLASS_FIELDS_BY_SCHEMA_PATH: Record<string, Record<string, 'required' | 'optional'>> = {
  '': CLASS_FIELDS,
  '.spec': CLASS_SPEC_FIELDS,
  '.spec.registry': CLASS_REGISTRY_FIELDS,
  '.spec.directory': CLASS_DIRECTORY_FIELDS,
};

const registryClass: CheckpointStorageClass = {
  apiVersion: CHECKPOINT_API_VERSION,
  kind: CHECKPOINT_STORAGE_CLASS_KIND,
  metadata: { name: 'team-registry', annotations: { 'cryo.dev/is-default-class': 'true' } },
  spec: { namespaces: ['shop', 'billing'], registry: { repository: '10.0.0.5:5000/checkpoints', pushSecretName: 'checkpoint-push', pullSecretName: 'checkpoint-pull', layerCompression: 'Zstd' } },
};
const directoryClass: CheckpointStorageClass = {
  apiVersion: CHECKPOINT_API_VERSION,
  kind: CHECKPOINT_STORAGE_CLASS_KIND,
  metadata: { name: 'node-local' },
  spec: { namespaces: ['*'], directory: { path: '/var/lib/cryo/checkpoints', shared: false } },
};

describe('the CheckpointStorageClass CRD', () => {
  const { crd, version, schema, node } = crdSchema(`${CHECKPOINT_STORAGE_CLASS_PLURAL}.${CHECKPOINT_GROUP}`);

  it('names a cluster-scoped API as common/src/api/checkpoint-storage-class.ts does, one version', () => {
    expect(crd.spec.group).toBe(CHECKPOINT_GROUP);
    expect(crd.spec.scope).toBe('Cluster');
    expect(crd.spec.names).toMatchObject({ kind: CHECKPOINT_STORAGE_CLASS_KIND, plural: CHECKPOINT_STORAGE_CLASS_PLURAL, shortNames: ['ckptclass'], categories: ['cryo'] });
    expect(crd.spec.versions).toHaveLength(1);
    expect(version).toMatchObject({ name: CHECKPOINT_VERSION, served: true, storage: true });
  });

  it('has a structural schema with exactly the fields of the TypeScript types', () => {
    expect(structuralSchemaProblems(schema)).toEqual([]);
    expectFieldsOfTypes(schema, CLASS_FIELDS_BY_SCHEMA_PATH);
    expect(node('.spec')['x-kubernetes-validations']).toEqual([{ rule: 'has(self.registry) != has(self.directory)', message: expect.stringMatching(/exactly one of registry or directory/) }]);
    expect(node('.spec.registry.layerCompression').enum).toEqual([...STORAGE_CLASS_LAYER_COMPRESSIONS]);
  });

  describe('validates classes as the kube-apiserver would (CEL aside)', () => {
    const validate = compileSchema(schema);
    const check = (object: unknown): string => (validate(object) ? 'valid' : formatErrors(validate.errors));

    it.each([
      ['a registry class for two namespaces', registryClass],
      ['a directory class for all namespaces', directoryClass],
    ])('accepts %s', (_, storageClass) => {
      expect(check(JSON.parse(JSON.stringify(storageClass)))).toBe('valid');
    });

    it.each([
      ['no namespaces', registryClass, 'spec.namespaces', REMOVE, /^\/spec must have required property 'namespaces'$/],
      ['an empty namespace list', registryClass, 'spec.namespaces', [], /^\/spec\/namespaces must NOT have fewer than 1 items$/],
      ['a namespace that is no DNS label', registryClass, 'spec.namespaces', ['Shop'], /^\/spec\/namespaces\/0 must match pattern/],
      ['a namespace pattern other than *', registryClass, 'spec.namespaces', ['team-*'], /^\/spec\/namespaces\/0 must match pattern/],
      ['a repository with a scheme', registryClass, 'spec.registry.repository', 'http://10.0.0.5:5000/checkpoints', /^\/spec\/registry\/repository must match pattern/],
      ['a repository with a tag', registryClass, 'spec.registry.repository', '10.0.0.5:5000/checkpoints:v1', /^\/spec\/registry\/repository must match pattern/],
      ['a repository without a path', registryClass, 'spec.registry.repository', '10.0.0.5:5000', /^\/spec\/registry\/repository must match pattern/],
      ['a relative directory', directoryClass, 'spec.directory.path', 'checkpoints', /^\/spec\/directory\/path must match pattern/],
      ['a layer compression other than None or Zstd', registryClass, 'spec.registry.layerCompression', 'gzip', /^\/spec\/registry\/layerCompression must be equal to one of the allowed values$/],
    ] as const)('refuses %s', (_, base, path, value, error) => {
      expect(check(withField(JSON.parse(JSON.stringify(base)), path, value))).toMatch(error);
    });
  });
});

// ---------------------------------------------------------------------------------------
// The Migration CRD against common/src/api/migration.ts
// ---------------------------------------------------------------------------------------

const MIGRATION_FIELDS = { apiVersion: 'optional', kind: 'optional', metadata: 'optional', spec: 'required', status: 'optional' } satisfies FieldsOf<Migration>;
const MIGRATION_SPEC_FIELDS = { podName: 'required', targetNodeName: 'optional', restartInPlace: 'optional', storageClassName: 'optional', reason: 'optional' } satisfies FieldsOf<MigrationSpec>;
const MIGRATION_STATUS_FIELDS = {
  phase: 'optional',
  message: 'optional',
  sourceNodeName: 'optional',
  sourcePodUID: 'optional',
  sourceOwner: 'optional',
  checkpointName: 'optional',
  targetPodName: 'optional',
  targetNodeName: 'optional',
  startTime: 'optional',
  completionTime: 'optional',
  downtimeSeconds: 'optional',
  conditions: 'optional',
  observedGeneration: 'optional',
} satisfies FieldsOf<MigrationStatus>;
const SOURCE_OWNER_FIELDS = { kind: 'required', name: 'required', uid: 'required' } satisfies FieldsOf<NonNullable<MigrationStatus['sourceOwner']>>;
const MIGRATION_FIELDS_BY_SCHEMA_PATH: Record<string, Record<string, 'required' | 'optional'>> = {
  '': MIGRATION_FIELDS,
  '.spec': MIGRATION_SPEC_FIELDS,
  '.status': MIGRATION_STATUS_FIELDS,
  '.status.sourceOwner': SOURCE_OWNER_FIELDS,
  '.status.conditions[]': CONDITION_FIELDS,
};

const deploymentMigration: Migration = {
  apiVersion: CHECKPOINT_API_VERSION,
  kind: MIGRATION_KIND,
  metadata: { name: 'move-orders', namespace: 'shop' },
  spec: { podName: 'orders-api-7c9f8d6b5-x2vqz', targetNodeName: 'worker-2', storageClassName: 'team-registry', reason: 'drain worker-1' },
  status: {
    phase: 'Succeeded',
    message: 'pod orders-api-7c9f8d6b5-q8k2m runs Ready on node worker-2, restored from Checkpoint move-orders-3f2a1; downtime 2.4 s',
    sourceNodeName: 'worker-1',
    sourcePodUID: '0d7c7a52-1f0e-4b8e-9f3a-2c1d0e9b8a76',
    sourceOwner: { kind: 'ReplicaSet', name: 'orders-api-7c9f8d6b5', uid: '5d1f4c2a-9b7e-4f0e-8f43-2a6b1c9d0e11' },
    checkpointName: 'move-orders-3f2a1',
    targetPodName: 'orders-api-7c9f8d6b5-q8k2m',
    targetNodeName: 'worker-2',
    startTime: '2026-12-01T10:00:00Z',
    completionTime: '2026-12-01T10:00:09.512Z',
    downtimeSeconds: 2.4,
    conditions: [
      { type: 'Progressing', status: 'False', reason: 'Succeeded', message: 'done', lastTransitionTime: new Date('2026-12-01T10:00:09.512Z') },
      { type: 'SourceStopped', status: 'True', reason: 'Evicted', message: 'evicted', lastTransitionTime: new Date('2026-12-01T10:00:06.1Z') },
    ],
    observedGeneration: 1,
  },
};
const rebootMigration: Migration = {
  apiVersion: CHECKPOINT_API_VERSION,
  kind: MIGRATION_KIND,
  metadata: { name: 'reboot-db', namespace: 'shop' },
  spec: { podName: 'db-0', restartInPlace: true },
};

describe('the Migration CRD', () => {
  const { crd, version, schema, node } = crdSchema(`${MIGRATION_PLURAL}.${CHECKPOINT_GROUP}`);

  it('names a namespaced API as common/src/api/migration.ts does', () => {
    expect(crd.spec.group).toBe(CHECKPOINT_GROUP);
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toEqual({ kind: MIGRATION_KIND, listKind: `${MIGRATION_KIND}List`, plural: MIGRATION_PLURAL, singular: 'migration', shortNames: ['mig'], categories: ['cryo'] });
  });

  it('serves and stores one version, with a status subresource', () => {
    expect(crd.spec.versions).toHaveLength(1);
    expect(version).toMatchObject({ name: CHECKPOINT_VERSION, served: true, storage: true, subresources: { status: {} } });
  });

  it('shows pod, phase, target, source and downtime (wide) and age in kubectl get', () => {
    expect(version.additionalPrinterColumns).toEqual([
      { name: 'Pod', type: 'string', jsonPath: '.spec.podName' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'Target', type: 'string', jsonPath: '.status.targetNodeName' },
      { name: 'Source', type: 'string', jsonPath: '.status.sourceNodeName', priority: 1 },
      { name: 'Downtime', type: 'number', jsonPath: '.status.downtimeSeconds', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ]);
  });

  it('has a structural schema with exactly the fields of the TypeScript types, required where they are required', () => {
    expect(structuralSchemaProblems(schema)).toEqual([]);
    expectFieldsOfTypes(schema, MIGRATION_FIELDS_BY_SCHEMA_PATH);
  });

  it('allows exactly the phases of the TypeScript union, and keys conditions by type', () => {
    expect(node('.status.phase').enum).toEqual([...MIGRATION_PHASES]);
    expect(node('.status.conditions')).toMatchObject({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] });
    // The same metav1.Condition schema as the Checkpoint's.
    const checkpointCrd = the('CustomResourceDefinition', `${CHECKPOINT_PLURAL}.${CHECKPOINT_GROUP}`).spec.versions[0].schema!.openAPIV3Schema as SchemaNode;
    expect(node('.status.conditions')).toEqual([...schemaNodes(checkpointCrd)].find(([p]) => p === '.status.conditions')![1]);
  });

  it('makes spec immutable and refuses restartInPlace with a target, with CEL rules whose messages say so', () => {
    expect(node('.spec')['x-kubernetes-validations']).toEqual([
      { rule: 'self == oldSelf', message: expect.stringMatching(/spec is immutable/) },
      { rule: '!(has(self.targetNodeName) && has(self.restartInPlace) && self.restartInPlace)', message: expect.stringMatching(/leave targetNodeName out/) },
    ]);
  });

  it('bounds every string in spec, which keeps the CEL cost of self == oldSelf small', () => {
    for (const [path, n] of schemaNodes(node('.spec'))) {
      if (n.type === 'string') expect(n.maxLength, `.spec${path}`).toBeDefined();
    }
  });

  describe('validates Migrations as the kube-apiserver would (CEL aside)', () => {
    const validate = compileSchema(schema);
    const check = (object: unknown): string => (validate(object) ? 'valid' : formatErrors(validate.errors));
    const wireMigration = (migration: Migration): unknown => JSON.parse(JSON.stringify(migration));

    it.each([
      ['a finished move of a Deployment pod', deploymentMigration],
      ['a restart in place just created', rebootMigration],
      ['one that names only its pod (the scheduler picks the target)', { ...rebootMigration, spec: { podName: 'db-0' } }],
    ])('accepts %s', (_, migration) => {
      expect(check(wireMigration(migration))).toBe('valid');
    });

    it.each([
      ['no spec.podName', rebootMigration, 'spec.podName', REMOVE, /^\/spec must have required property 'podName'$/],
      ['a podName that is no DNS subdomain', rebootMigration, 'spec.podName', 'DB_0', /^\/spec\/podName must match pattern/],
      ['a target that is no node name', deploymentMigration, 'spec.targetNodeName', 'Worker 2', /^\/spec\/targetNodeName must match pattern/],
      ['restartInPlace that is no boolean', rebootMigration, 'spec.restartInPlace', 'yes', /^\/spec\/restartInPlace must be boolean$/],
      ['a reason over 1024 characters', rebootMigration, 'spec.reason', 'x'.repeat(1025), /^\/spec\/reason must NOT have more than 1024 characters$/],
      ['a field the API does not have', rebootMigration, 'spec.nodeName', 'worker-2', /^\/spec must NOT have additional properties$/],
      ['a phase that does not exist', deploymentMigration, 'status.phase', 'Moving', /^\/status\/phase must be equal to one of the allowed values$/],
      ['a negative downtime', deploymentMigration, 'status.downtimeSeconds', -1, /^\/status\/downtimeSeconds must be >= 0$/],
      ['a source owner without uid', deploymentMigration, 'status.sourceOwner.uid', REMOVE, /^\/status\/sourceOwner must have required property 'uid'$/],
      ['a startTime that is no date-time', deploymentMigration, 'status.startTime', 'just now', /^\/status\/startTime must match format "date-time"$/],
      ['a condition without a reason', deploymentMigration, 'status.conditions.0.reason', REMOVE, /^\/status\/conditions\/0 must have required property 'reason'$/],
    ] as const)('refuses %s', (_, base, path, value, error) => {
      expect(check(withField(wireMigration(base), path, value))).toMatch(error);
    });
  });
});

// ---------------------------------------------------------------------------------------
// The CheckpointSchedule CRD against common/src/api/checkpoint-schedule.ts
// ---------------------------------------------------------------------------------------

const SCHEDULE_FIELDS = { apiVersion: 'optional', kind: 'optional', metadata: 'optional', spec: 'required', status: 'optional' } satisfies FieldsOf<CheckpointSchedule>;
const SCHEDULE_SPEC_FIELDS = {
  schedule: 'required',
  timeZone: 'optional',
  selector: 'required',
  keepLast: 'optional',
  suspend: 'optional',
  startingDeadlineSeconds: 'optional',
  checkpointTemplate: 'optional',
} satisfies FieldsOf<CheckpointScheduleSpec>;
const SELECTOR_FIELDS = { matchLabels: 'optional', matchExpressions: 'optional' } satisfies FieldsOf<V1LabelSelector>;
const SELECTOR_REQUIREMENT_FIELDS = { key: 'required', operator: 'required', values: 'optional' } satisfies FieldsOf<V1LabelSelectorRequirement>;
const TEMPLATE_FIELDS = { containers: 'optional', storageClassName: 'optional', storage: 'optional', reason: 'optional' } satisfies FieldsOf<CheckpointTemplate>;
const SCHEDULE_STATUS_FIELDS = { lastScheduleTime: 'optional', nextScheduleTime: 'optional', lastCheckpoints: 'optional', conditions: 'optional', observedGeneration: 'optional' } satisfies FieldsOf<CheckpointScheduleStatus>;
const SCHEDULED_CHECKPOINT_FIELDS = { podName: 'required', checkpointName: 'required' } satisfies FieldsOf<ScheduledCheckpointReference>;
const SCHEDULE_FIELDS_BY_SCHEMA_PATH: Record<string, Record<string, 'required' | 'optional'>> = {
  '': SCHEDULE_FIELDS,
  '.spec': SCHEDULE_SPEC_FIELDS,
  '.spec.selector': SELECTOR_FIELDS,
  '.spec.selector.matchExpressions[]': SELECTOR_REQUIREMENT_FIELDS,
  '.spec.checkpointTemplate': TEMPLATE_FIELDS,
  '.spec.checkpointTemplate.storage': STORAGE_FIELDS,
  '.spec.checkpointTemplate.storage.registry': REGISTRY_FIELDS,
  '.spec.checkpointTemplate.storage.directory': DIRECTORY_FIELDS,
  '.status': SCHEDULE_STATUS_FIELDS,
  '.status.lastCheckpoints[]': SCHEDULED_CHECKPOINT_FIELDS,
  '.status.conditions[]': CONDITION_FIELDS,
};

const nightlySchedule: CheckpointSchedule = {
  apiVersion: CHECKPOINT_API_VERSION,
  kind: CHECKPOINT_SCHEDULE_KIND,
  metadata: { name: 'nightly', namespace: 'shop' },
  spec: {
    schedule: '30 2 * * 1-5',
    timeZone: 'Europe/Berlin',
    selector: { matchLabels: { app: 'orders' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['backend'] }] },
    keepLast: 5,
    startingDeadlineSeconds: 600,
    checkpointTemplate: { storageClassName: 'team-registry', containers: ['api'], reason: 'nightly' },
  },
  status: {
    lastScheduleTime: '2026-12-03T01:30:00Z',
    nextScheduleTime: '2026-12-04T01:30:00Z',
    lastCheckpoints: [{ podName: 'orders-0', checkpointName: 'nightly-orders-0-202612030130' }],
    conditions: [{ type: 'Ready', status: 'True', reason: 'Scheduled', message: 'next run at 2026-12-04T01:30:00.000Z', lastTransitionTime: new Date('2026-12-01T10:00:00Z') }],
    observedGeneration: 1,
  },
};
const everyPodHourly: CheckpointSchedule = {
  apiVersion: CHECKPOINT_API_VERSION,
  kind: CHECKPOINT_SCHEDULE_KIND,
  metadata: { name: 'hourly', namespace: 'shop' },
  spec: { schedule: '0 * * * *', selector: {} },
};

describe('the CheckpointSchedule CRD', () => {
  const { crd, version, schema, node } = crdSchema(`${CHECKPOINT_SCHEDULE_PLURAL}.${CHECKPOINT_GROUP}`);
  const checkpointSchema = the('CustomResourceDefinition', `${CHECKPOINT_PLURAL}.${CHECKPOINT_GROUP}`).spec.versions[0].schema!.openAPIV3Schema as SchemaNode;
  const checkpointNode = (path: string): SchemaNode => [...schemaNodes(checkpointSchema)].find(([p]) => p === path)![1];

  it('names a namespaced API as common/src/api/checkpoint-schedule.ts does, one version with a status subresource', () => {
    expect(crd.metadata.name).toBe(`${CHECKPOINT_SCHEDULE_PLURAL}.${CHECKPOINT_GROUP}`);
    expect(crd.spec.group).toBe(CHECKPOINT_GROUP);
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toEqual({
      kind: CHECKPOINT_SCHEDULE_KIND,
      listKind: `${CHECKPOINT_SCHEDULE_KIND}List`,
      plural: CHECKPOINT_SCHEDULE_PLURAL,
      singular: 'checkpointschedule',
      shortNames: ['ckptsched'],
      categories: ['cryo'],
    });
    expect(crd.spec.versions).toHaveLength(1);
    expect(version).toMatchObject({ name: CHECKPOINT_VERSION, served: true, storage: true, subresources: { status: {} } });
  });

  it('shows schedule, suspend, keep, last schedule, next and time zone (wide) and age in kubectl get', () => {
    expect(version.additionalPrinterColumns).toEqual([
      { name: 'Schedule', type: 'string', jsonPath: '.spec.schedule' },
      { name: 'Suspend', type: 'boolean', jsonPath: '.spec.suspend' },
      { name: 'Keep', type: 'integer', jsonPath: '.spec.keepLast' },
      { name: 'Last Schedule', type: 'date', jsonPath: '.status.lastScheduleTime' },
      // A future time: a date column would print it as an age.
      { name: 'Next', type: 'string', jsonPath: '.status.nextScheduleTime', priority: 1 },
      { name: 'Time Zone', type: 'string', jsonPath: '.spec.timeZone', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ]);
  });

  it('has a structural schema with exactly the fields of the TypeScript types, required where they are required', () => {
    expect(structuralSchemaProblems(schema)).toEqual([]);
    expectFieldsOfTypes(schema, SCHEDULE_FIELDS_BY_SCHEMA_PATH);
  });

  it("takes each checkpointTemplate field exactly as the Checkpoint's spec has it, with the same storage rule", () => {
    for (const field of Object.keys(TEMPLATE_FIELDS)) expect(node(`.spec.checkpointTemplate.${field}`), field).toEqual(checkpointNode(`.spec.${field}`));
    const bothRule = checkpointNode('.spec')['x-kubernetes-validations']!.find((v) => v.rule.includes('storageClassName'));
    expect(node('.spec.checkpointTemplate')['x-kubernetes-validations']).toEqual([bothRule]);
  });

  it('defaults keepLast as the controller does, and keeps conditions as the other Cryo APIs do', () => {
    expect(node('.spec.keepLast')).toMatchObject({ type: 'integer', default: DEFAULT_KEEP_LAST, minimum: 1 });
    expect(node('.status.conditions')).toEqual(checkpointNode('.status.conditions'));
    expect(node('.status.lastCheckpoints')).toMatchObject({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['podName'] });
  });

  it('limits the name to what the cryo.dev/schedule label value can hold, with a CEL rule whose message says so', () => {
    expect(schema['x-kubernetes-validations']).toEqual([{ rule: 'self.metadata.name.size() <= 63', message: expect.stringMatching(/at most 63 characters/) }]);
  });

  describe('validates schedules as the kube-apiserver would (CEL aside)', () => {
    const validate = compileSchema(schema);
    const check = (object: unknown): string => (validate(object) ? 'valid' : formatErrors(validate.errors));
    const wireSchedule = (schedule: CheckpointSchedule): unknown => JSON.parse(JSON.stringify(schedule));

    it.each([
      ['a weekday schedule in a time zone, with a template', nightlySchedule],
      ['an hourly one for every pod, everything else defaulted', everyPodHourly],
      ['one with lists, ranges and steps and a directory store', { ...everyPodHourly, spec: { ...everyPodHourly.spec, schedule: '0,30 */2 1-15 1-12/3 *', checkpointTemplate: { storage: { directory: { path: '/var/lib/cryo', shared: true } } } } }],
    ])('accepts %s', (_, schedule) => {
      expect(check(wireSchedule(schedule))).toBe('valid');
    });

    it.each([
      ['no schedule', everyPodHourly, 'spec.schedule', REMOVE, /^\/spec must have required property 'schedule'$/],
      ['no selector', everyPodHourly, 'spec.selector', REMOVE, /^\/spec must have required property 'selector'$/],
      ['four cron fields', everyPodHourly, 'spec.schedule', '0 * * *', /^\/spec\/schedule must match pattern/],
      ['month names', everyPodHourly, 'spec.schedule', '0 0 1 JAN *', /^\/spec\/schedule must match pattern/],
      ['a macro', everyPodHourly, 'spec.schedule', '@hourly', /^\/spec\/schedule must match pattern/],
      ['keepLast 0', everyPodHourly, 'spec.keepLast', 0, /^\/spec\/keepLast must be >= 1$/],
      ['a fractional keepLast', everyPodHourly, 'spec.keepLast', 2.5, /^\/spec\/keepLast must be integer$/],
      ['a time zone with spaces', nightlySchedule, 'spec.timeZone', 'Central European', /^\/spec\/timeZone must match pattern/],
      ['an unknown selector operator', nightlySchedule, 'spec.selector.matchExpressions.0.operator', 'Equals', /^\/spec\/selector\/matchExpressions\/0\/operator must be equal to one of the allowed values$/],
      ['a template that names a pod', nightlySchedule, 'spec.checkpointTemplate.podName', 'orders-0', /^\/spec\/checkpointTemplate must NOT have additional properties$/],
      ['a template purpose (schedules take snapshots)', nightlySchedule, 'spec.checkpointTemplate.purpose', 'Migration', /^\/spec\/checkpointTemplate must NOT have additional properties$/],
      ['a zero startingDeadlineSeconds', nightlySchedule, 'spec.startingDeadlineSeconds', 0, /^\/spec\/startingDeadlineSeconds must be >= 1$/],
      ['a lastScheduleTime that is no date-time', nightlySchedule, 'status.lastScheduleTime', 'last night', /^\/status\/lastScheduleTime must match format "date-time"$/],
      ['a last checkpoint without its name', nightlySchedule, 'status.lastCheckpoints.0.checkpointName', REMOVE, /^\/status\/lastCheckpoints\/0 must have required property 'checkpointName'$/],
    ] as const)('refuses %s', (_, base, path, value, error) => {
      expect(check(withField(wireSchedule(base), path, value))).toMatch(error);
    });
  });
});

describe.each([
  { dir: 'webhook', bin: 'cryo-webhook', user: 'USER 65532:65532', port: defaults.port, podSpec: pod, nodeFlags: [], nodeEnv: {} },
  // The node agent runs as root (its DaemonSet says why): the image sets no USER.
  { dir: 'node-agent', bin: 'cryo-node-agent', user: undefined, port: agentDefaults.port, podSpec: agentPod, nodeFlags: NODE_AGENT_NODE_FLAGS, nodeEnv: NODE_AGENT_ENV },
  { dir: 'controller', bin: 'cryo-controller', user: 'USER 65532:65532', port: controllerDefaults.port, podSpec: controllerPod, nodeFlags: CONTROLLER_NODE_FLAGS, nodeEnv: CONTROLLER_ENV },
])('the $dir image ($dir/Dockerfile)', ({ dir, bin, user, port, podSpec, nodeFlags, nodeEnv }) => {
  const dockerfile = readFileSync(join(REPO_ROOT, dir, 'Dockerfile'), 'utf8');
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const last = (keyword: string): string | undefined => instructions.filter((i) => i.startsWith(`${keyword} `)).pop();

  it('builds on a BASE_IMAGE argument whose default is a Node 24 image named without a registry', () => {
    const bases = instructions.filter((i) => i.startsWith('FROM ')).map((i) => i.split(/\s+/)[1]);
    expect(bases.length).toBeGreaterThanOrEqual(2);
    for (const base of bases) expect(base).toBe('${BASE_IMAGE}');
    const defaultBase = instructions.find((i) => i.startsWith('ARG BASE_IMAGE='))?.slice('ARG BASE_IMAGE='.length);
    expect(defaultBase).toMatch(/^node:24(-|$)/);
    expect(registryHostOf(defaultBase!)).toBeUndefined();
    // Before the first FROM, so that every stage can use it.
    expect(instructions.indexOf(`ARG BASE_IMAGE=${defaultBase}`)).toBeLessThan(instructions.findIndex((i) => i.startsWith('FROM ')));
  });

  it('runs as the user its pod requires, on the default port', () => {
    expect(last('USER')).toBe(user);
    const { runAsUser, runAsGroup } = podSpec.containers[0].securityContext!;
    expect(last('USER') ?? 'USER 0:0').toBe(`USER ${runAsUser}:${runAsGroup}`);
    expect(last('EXPOSE')).toBe(`EXPOSE ${port}`);
    expect(instructions).toContain('ENV NODE_ENV=production');
  });

  it("starts the package's bin with Node's type stripping, and the Node settings the component measured", () => {
    expect(packageJson(dir).bin?.[bin]).toBe('./src/main.ts');
    expect(last('ENTRYPOINT')).toBe(`ENTRYPOINT ${JSON.stringify(['node', ...nodeFlags, `${dir}/src/main.ts`]).replaceAll(',', ', ')}`);
    for (const [name, value] of Object.entries(nodeEnv)) expect(instructions).toContain(`ENV ${name}=${value}`);
  });

  it('installs production dependencies only', () => {
    const install = instructions.find((i) => i.startsWith('RUN npm ci'));
    expect(install).toContain('--omit=dev');
  });

  it(`holds every workspace package ${dir}/src/main.ts imports, with its sources`, () => {
    const needed = workspaceImportsOf(join(REPO_ROOT, dir, 'src/main.ts'));
    expect(needed).toContain(dir);
    const install = instructions.find((i) => i.startsWith('RUN npm ci')) ?? '';
    for (const workspace of needed) {
      const { name } = packageJson(workspace);
      expect(instructions, `COPY ${workspace}/package.json`).toContain(`COPY ${workspace}/package.json ${workspace}/`);
      expect(instructions, `COPY ${workspace}/src`).toContain(`COPY ${workspace}/src ${workspace}/src`);
      expect(instructions, `COPY --from=deps ${workspace}`).toContain(`COPY --from=deps /app/${workspace} ${workspace}`);
      expect(install, `npm ci --workspace ${name}`).toContain(`--workspace ${name}`);
    }
  });
});

/** The workspace directories (common, hook-sdk, ...) reached from an entry file through its imports. */
function workspaceImportsOf(entry: string): string[] {
  const workspaces = new Map<string, string>();
  for (const dir of (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces) {
    workspaces.set((JSON.parse(readFileSync(join(REPO_ROOT, dir, 'package.json'), 'utf8')) as { name: string }).name, dir);
  }
  const seen = new Set<string>();
  const dirs = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    dirs.add(relative(REPO_ROOT, file).split('/')[0]);
    const source = readFileSync(file, 'utf8');
    for (const [, spec] of source.matchAll(/^(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)) {
      if (spec.startsWith('.')) visit(join(file, '..', spec));
      const pkg = [...workspaces.keys()].find((name) => spec === name || spec.startsWith(`${name}/`));
      if (pkg === undefined) continue;
      const dir = workspaces.get(pkg)!;
      const { exports } = JSON.parse(readFileSync(join(REPO_ROOT, dir, 'package.json'), 'utf8')) as { exports: Record<string, string> };
      const target = exports[spec === pkg ? '.' : `.${spec.slice(pkg.length)}`];
      if (target !== undefined) visit(join(REPO_ROOT, dir, target));
    }
  };
  visit(entry);
  return [...dirs].sort();
}
