/**
 * The webhook's configuration: flags and env vars with documented defaults
 * (README.md#webhook-configuration shows the same table, checked by config.test.ts).
 */
import {
  formatByteSize,
  formatDuration,
  HOOK_CSI_DRIVER,
  HOOK_SOCKET_VOLUME_KINDS,
  OptionError,
  parseByteSize,
  parseDurationSeconds,
  parseInteger,
  parseOptionalAbsolutePath,
  parseString,
  readOptions,
  sharedOptionSpecs,
  type HookSocketVolumeKind,
  type OptionSpec,
} from '@cryo/common';
import { readClientCaFile } from './tls/client-auth.ts';

export const webhookOptionSpecs = {
  port: {
    flag: '--port', env: 'CRYO_PORT', default: 8443, parse: parseInteger(0, 65535),
    description: 'HTTPS port serving /mutate, /healthz, /readyz and /metrics (0 picks a free port).',
  } satisfies OptionSpec<number>,
  namespace: {
    flag: '--namespace', env: 'POD_NAMESPACE', default: 'cryo-system', parse: parseString,
    description: "The webhook's own namespace (downward API), where its Service and TLS Secret live.",
  } satisfies OptionSpec<string>,
  serviceName: {
    flag: '--service-name', env: 'CRYO_SERVICE_NAME', default: 'cryo-webhook', parse: parseString,
    description: 'Service in front of the webhook; its DNS names are the serving certificate SANs.',
  } satisfies OptionSpec<string>,
  webhookConfigName: {
    flag: '--webhook-config-name', env: 'CRYO_WEBHOOK_CONFIG_NAME', default: 'cryo-webhook', parse: parseString,
    description: 'MutatingWebhookConfiguration whose caBundle the webhook keeps current (generated TLS only).',
  } satisfies OptionSpec<string>,
  tlsSecretName: {
    flag: '--tls-secret-name', env: 'CRYO_TLS_SECRET_NAME', default: 'cryo-webhook-tls', parse: parseString,
    description: 'Secret through which all replicas share one CA and serving certificate (generated TLS only).',
  } satisfies OptionSpec<string>,
  tlsCertFile: {
    flag: '--tls-cert-file', env: 'CRYO_TLS_CERT_FILE', default: '', parse: parseOptionalAbsolutePath,
    description: 'PEM serving certificate provided from outside (e.g. cert-manager); with --tls-key-file it replaces generated TLS and is reloaded when the file changes.',
  } satisfies OptionSpec<string>,
  tlsKeyFile: {
    flag: '--tls-key-file', env: 'CRYO_TLS_KEY_FILE', default: '', parse: parseOptionalAbsolutePath,
    description: 'PEM private key for --tls-cert-file.',
  } satisfies OptionSpec<string>,
  servingCertValiditySeconds: {
    flag: '--serving-cert-validity', env: 'CRYO_SERVING_CERT_VALIDITY', default: 7 * 86400, parse: parseDurationSeconds, format: formatDuration,
    description: 'Lifetime of each generated serving certificate.',
  } satisfies OptionSpec<number>,
  servingCertRenewBeforeSeconds: {
    flag: '--serving-cert-renew-before', env: 'CRYO_SERVING_CERT_RENEW_BEFORE', default: 2 * 86400, parse: parseDurationSeconds, format: formatDuration,
    description: 'Renew the serving certificate when less than this is left of its lifetime.',
  } satisfies OptionSpec<number>,
  tlsResyncSeconds: {
    flag: '--tls-resync', env: 'CRYO_TLS_RESYNC', default: 60, parse: parseDurationSeconds, format: formatDuration,
    description: 'How often to re-read the TLS Secret and re-check the caBundle, besides watching it.',
  } satisfies OptionSpec<number>,
  // Read here too, so that a missing or wrong file stops the start with the flag's name.
  clientCaFile: {
    flag: '--client-ca-file', env: 'CRYO_CLIENT_CA_FILE', default: '', defaultText: '(none: any client)', parse: (raw) => {
      const file = parseOptionalAbsolutePath(raw);
      if (file !== '') readClientCaFile(file);
      return file;
    },
    description: "PEM CA bundle; when set, POST /mutate answers only a client whose certificate it verifies (the kube-apiserver's, from its admission configuration: docs/security.md); others get 401. /healthz, /readyz and /metrics need no certificate.",
  } satisfies OptionSpec<string>,
  clientAllowedNames: {
    flag: '--client-allowed-names', env: 'CRYO_CLIENT_ALLOWED_NAMES', default: [] as readonly string[], defaultText: '(any the CA signed)', parse: parseNameList,
    description: 'With --client-ca-file: comma-separated names, one of which the client certificate must carry as its subject CommonName or a DNS SAN (exact match); others get 403. Set it when the CA signs more than the kube-apiserver (a cluster CA does).',
  } satisfies OptionSpec<readonly string[]>,
  checkpointPullSecret: {
    flag: '--checkpoint-pull-secret', env: 'CRYO_CHECKPOINT_PULL_SECRET', default: '', parse: parseString,
    description: "imagePullSecret added to restored pods whose checkpoint is an image (must exist in the pod's namespace).",
  } satisfies OptionSpec<string>,
  hookSocketVolume: {
    flag: '--hook-socket-volume', env: 'CRYO_HOOK_SOCKET_VOLUME', default: 'csi' as HookSocketVolumeKind, parse: parseHookSocketVolume,
    description: `How a hook-enabled pod gets its socket: csi, an inline volume of the node agent's CSI driver ${HOOK_CSI_DRIVER} (the pod's own directory, read-only; allowed under Pod Security restricted), or hostPath, --host-hooks-dir with subPathExpr $(CRYO_POD_UID) (needs a privileged namespace).`,
  } satisfies OptionSpec<HookSocketVolumeKind>,
  hostHooksDir: sharedOptionSpecs.hostHooksDir,
  // The kube-apiserver accepts no request body over 3 MiB (MaxRequestBodyBytes, twice etcd's
  // default 1.5 MiB request limit), so no pod it can store is larger as JSON. The review wraps
  // that pod with what the apiserver adds before admission (managedFields, the request's
  // userInfo, uid, kind, options; oldObject is null on CREATE): 1 MiB more covers them.
  maxBodyBytes: {
    flag: '--max-body-bytes', env: 'CRYO_MAX_BODY_BYTES', default: 4 * 1024 * 1024, parse: parseByteSize(64 * 1024, 64 * 1024 * 1024), format: formatByteSize,
    description: "Largest AdmissionReview accepted (the apiserver's 3 MiB request limit plus 1 MiB for the review around the pod); larger bodies get 413. From 64Ki to 64Mi.",
  } satisfies OptionSpec<number>,
  shutdownDelaySeconds: {
    flag: '--shutdown-delay', env: 'CRYO_SHUTDOWN_DELAY', default: 5, parse: parseDurationSeconds, format: formatDuration,
    description: 'On SIGTERM, fail readiness and keep serving this long before closing, so endpoints drop the pod first.',
  } satisfies OptionSpec<number>,
  kubeconfig: sharedOptionSpecs.kubeconfig,
};

export type WebhookConfig = ReturnType<typeof readWebhookConfig>;

export function readWebhookConfig(argv: readonly string[] = process.argv.slice(2), env = process.env) {
  const config = readOptions(webhookOptionSpecs, argv, env);
  if (config.clientAllowedNames.length > 0 && config.clientCaFile === '') {
    throw new OptionError('--client-allowed-names needs --client-ca-file: names are checked only on certificates that CA verified');
  }
  return config;
}

function parseNameList(raw: string): readonly string[] {
  const names = raw.split(',').map((name) => name.trim()).filter((name) => name !== '');
  if (names.length === 0) throw new OptionError(`expected names separated by commas, got "${raw}"`);
  return names;
}

function parseHookSocketVolume(raw: string): HookSocketVolumeKind {
  const kind = HOOK_SOCKET_VOLUME_KINDS.find((k) => k === raw);
  if (kind === undefined) throw new OptionError(`expected ${HOOK_SOCKET_VOLUME_KINDS.join(' or ')}, got "${raw}"`);
  return kind;
}
