/**
 * Keeps `webhooks[*].clientConfig.caBundle` of our MutatingWebhookConfiguration equal to the CA
 * that signs the serving certificate. GitOps tools and `helm upgrade` reset it to what the
 * manifest says (usually empty), after which the API server rejects every call to the webhook;
 * so the keeper watches that one object, re-checks on a timer, and writes only when it differs.
 *
 * Writes are JSON Patches with a `test` of each webhook's name at its index: if the list changed
 * since we read it the patch fails instead of putting a caBundle on the wrong entry, and we re-read.
 * Patching (not replacing) also leaves alone fields this client's model does not know.
 */
import {
  AdmissionregistrationV1Api,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type KubeConfig,
  type V1MutatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { apiStatusCode, Backoff, CoalescingRunner, describeApiError, isNotFound, unrefTimeout, type BackoffOptions, type Logger } from '@cryo/common';

export const MUTATING_WEBHOOK_CONFIGURATIONS_PATH = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';

/** `unknown` before the first check; `missing` while the configuration does not exist. */
export type CaBundleState = 'unknown' | 'in-sync' | 'missing' | 'error';

export interface CaBundleKeeperOptions {
  kubeConfig: KubeConfig;
  webhookConfigName: string;
  logger: Logger;
  /** Re-check this often even when the watch reports nothing. */
  resyncSeconds: number;
  /** Called after each successful write (the writes counter). */
  onWrite?: () => void;
  backoff?: BackoffOptions;
}

interface JsonPatchOperation {
  op: 'test' | 'add';
  path: string;
  value: unknown;
}

// A failed `test` op comes back as 422 (or 409 from some servers): the list moved under us.
const PATCH_RACE_STATUSES = new Set([409, 422]);
const MAX_PATCH_ATTEMPTS = 3;
// A watch that lived this long ended normally (server timeout, idle cut); reconnect at once.
const HEALTHY_WATCH_MS = 5_000;

export class CaBundleKeeper {
  private readonly options: CaBundleKeeperOptions;
  private readonly api: AdmissionregistrationV1Api;
  private readonly checkBackoff: Backoff;
  private readonly watchBackoff: Backoff;
  private caBundle: string | undefined;
  private currentState: CaBundleState = 'unknown';
  private started = false;
  private stopped = false;
  private readonly checks = new CoalescingRunner(() => this.check(), () => !this.stopped);
  private checkTimer: NodeJS.Timeout | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  private watchAbort: AbortController | undefined;

  constructor(options: CaBundleKeeperOptions) {
    this.options = options;
    this.api = options.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    this.checkBackoff = new Backoff(options.backoff);
    this.watchBackoff = new Backoff(options.backoff);
  }

  get state(): CaBundleState {
    return this.currentState;
  }

  /** Sets the CA (PEM) the configuration must trust; re-checks at once when it changed. */
  setCaCert(caPem: string): void {
    const caBundle = Buffer.from(caPem, 'utf8').toString('base64');
    if (caBundle === this.caBundle) return;
    this.caBundle = caBundle;
    if (this.started) void this.requestCheck();
  }

  /** Begins watching and the periodic re-check; the first check runs now. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.stopped = false;
    this.startWatch();
    void this.requestCheck();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.started = false;
    clearTimeout(this.checkTimer);
    clearTimeout(this.watchTimer);
    this.watchAbort?.abort();
    this.watchAbort = undefined;
    await this.checks.inFlight;
  }

  /** Checks now (or right after the check in flight); never rejects. */
  requestCheck(): Promise<void> {
    return this.checks.run();
  }

  private async check(): Promise<void> {
    clearTimeout(this.checkTimer);
    let nextCheckMs = this.options.resyncSeconds * 1000;
    try {
      this.currentState = await this.reconcile();
      if (this.currentState === 'missing') nextCheckMs = Math.min(nextCheckMs, this.checkBackoff.next());
      else this.checkBackoff.reset();
    } catch (err) {
      this.currentState = 'error';
      nextCheckMs = Math.min(nextCheckMs, this.checkBackoff.next());
      this.options.logger.warn({ webhookConfiguration: this.options.webhookConfigName, err: describeApiError(err), retryInMs: nextCheckMs }, 'could not check the webhook caBundle; retrying');
    }
    if (this.stopped) return;
    this.checkTimer = unrefTimeout(() => void this.requestCheck(), nextCheckMs);
  }

  private async reconcile(): Promise<CaBundleState> {
    const { webhookConfigName: name, logger } = this.options;
    const caBundle = this.caBundle;
    if (caBundle === undefined) return 'unknown';
    for (let attempt = 1; attempt <= MAX_PATCH_ATTEMPTS; attempt++) {
      let configuration: V1MutatingWebhookConfiguration;
      try {
        configuration = await this.api.readMutatingWebhookConfiguration({ name });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        if (this.currentState !== 'missing') {
          logger.warn({ webhookConfiguration: name }, 'MutatingWebhookConfiguration not found; will set its caBundle once it exists');
        }
        return 'missing';
      }
      const operations = caBundlePatch(configuration, caBundle);
      if (operations.length === 0) return 'in-sync';
      try {
        await this.api.patchMutatingWebhookConfiguration(
          { name, body: operations },
          setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
        );
      } catch (err) {
        const status = apiStatusCode(err);
        if (status !== undefined && PATCH_RACE_STATUSES.has(status) && attempt < MAX_PATCH_ATTEMPTS) {
          logger.info({ webhookConfiguration: name, err: describeApiError(err) }, 'webhook configuration changed while patching caBundle; re-reading');
          continue;
        }
        throw err;
      }
      this.options.onWrite?.();
      const webhooks = operations.filter((op) => op.op === 'test').map((op) => op.value as string);
      logger.info(
        { webhookConfiguration: name, webhooks },
        'wrote caBundle into the webhook configuration (if this repeats, something such as a GitOps sync keeps resetting it: have it ignore caBundle)',
      );
      return 'in-sync';
    }
    return 'error';
  }

  private startWatch(): void {
    if (this.stopped) return;
    const startedAt = Date.now();
    const watch = new Watch(this.options.kubeConfig);
    const onEvent = (phase: string, obj: unknown) => {
      if (phase === 'ADDED' || phase === 'MODIFIED') {
        if (this.caBundle !== undefined && caBundlePatch(obj as V1MutatingWebhookConfiguration, this.caBundle).length > 0) {
          this.options.logger.info({ webhookConfiguration: this.options.webhookConfigName, phase }, 'caBundle differs from our CA; rewriting');
          void this.requestCheck();
        }
      } else if (phase === 'DELETED') {
        this.options.logger.warn({ webhookConfiguration: this.options.webhookConfigName }, 'MutatingWebhookConfiguration deleted');
        void this.requestCheck();
      }
    };
    const onDone = (err: unknown) => {
      this.watchAbort = undefined;
      if (this.stopped) return;
      if (Date.now() - startedAt >= HEALTHY_WATCH_MS) this.watchBackoff.reset();
      const delay = this.watchBackoff.next();
      if (err !== null && err !== undefined && !isAbort(err)) {
        this.options.logger.warn({ webhookConfiguration: this.options.webhookConfigName, err: describeApiError(err), retryInMs: delay }, 'caBundle watch failed; restarting');
      }
      // The watch starts without a resourceVersion, so it begins with an ADDED event of the
      // current object: whatever changed while we were disconnected is seen on reconnect.
      this.watchTimer = unrefTimeout(() => this.startWatch(), delay);
    };
    watch
      .watch(
        MUTATING_WEBHOOK_CONFIGURATIONS_PATH,
        { fieldSelector: `metadata.name=${this.options.webhookConfigName}`, allowWatchBookmarks: true },
        onEvent,
        onDone,
      )
      .then((abort) => {
        if (this.stopped) abort.abort();
        else this.watchAbort = abort;
      })
      .catch(onDone);
  }
}

/** The JSON Patch that puts `caBundle` on every webhook of the configuration lacking it; empty when all have it. */
export function caBundlePatch(configuration: V1MutatingWebhookConfiguration, caBundle: string): JsonPatchOperation[] {
  const operations: JsonPatchOperation[] = [];
  (configuration.webhooks ?? []).forEach((webhook, index) => {
    if (webhook.clientConfig?.caBundle === caBundle) return;
    operations.push({ op: 'test', path: `/webhooks/${index}/name`, value: webhook.name });
    operations.push({ op: 'add', path: `/webhooks/${index}/clientConfig/caBundle`, value: caBundle });
  });
  return operations;
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
}
