/**
 * Keeps this node's `cryo.dev/restore-runtime` label true: `containerd` or `cri-o` while the
 * node's runtime can restore checkpoints of its kind, absent otherwise. The webhook sends
 * restoring pods only to nodes so labelled. Checked at start and every few minutes (a runtime
 * upgrade changes the Node's containerRuntimeVersion, an operator edits the runtime's config, or
 * someone removes the label); a change is logged and recorded as an Event on the Node.
 *
 * The label is written with a JSON merge patch of metadata.labels alone: RBAC lets the agent
 * patch any Node, and manifests/node-agent-node-policy.yaml lets it change only labels under
 * cryo.dev/ of the Node its pod runs on.
 */
import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Node } from '@kubernetes/client-node';
import { describeApiError, EventRecorder, nodeLabels, type Logger, type Metrics } from '@cryo/common';
import { detectRestoreCapability, type RestoreCapability, type RuntimeConfigPaths, type RuntimeRestoreSetting } from './restore-capability.ts';

/** How often the agent re-reads its Node and the runtime's config files. */
export const RESTORE_RUNTIME_RECHECK_MS = 5 * 60_000;

export interface RestoreRuntimeLabelOptions {
  kubeConfig: KubeConfig;
  nodeName: string;
  setting: RuntimeRestoreSetting;
  configPaths: RuntimeConfigPaths;
  logger: Logger;
  metrics: Metrics;
  recheckMs?: number;
}

export class RestoreRuntimeLabel {
  private readonly options: RestoreRuntimeLabelOptions;
  private readonly nodes: CoreV1Api;
  private readonly events: EventRecorder;
  private readonly capable;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RestoreCapability | undefined> | undefined;
  /** The last decision recorded as an Event, so that an unchanged one is not recorded again. */
  private recorded: string | undefined;

  constructor(options: RestoreRuntimeLabelOptions) {
    this.options = options;
    this.nodes = options.kubeConfig.makeApiClient(CoreV1Api);
    this.events = new EventRecorder(options.kubeConfig, { controller: 'cryo.dev/node-agent', instance: `cryo-node-agent-${options.nodeName}` }, options.logger);
    this.capable = options.metrics.gauge('node_restore_capable', `1 while this node's runtime can restore checkpoints (the agent then labels the node ${nodeLabels.RESTORE_RUNTIME}), else 0`, ['runtime']);
  }

  /** Labels the Node once (failures are logged, never thrown: checkpoints work without the label), then re-checks periodically. */
  async start(): Promise<void> {
    await this.checkLogged();
    this.timer = setInterval(() => void this.checkLogged(), this.options.recheckMs ?? RESTORE_RUNTIME_RECHECK_MS);
    this.timer.unref();
  }

  private checkLogged(): Promise<unknown> {
    return this.check().catch((error: unknown) => this.options.logger.error({ err: (error as Error).message }, `checking the ${nodeLabels.RESTORE_RUNTIME} label failed`));
  }

  stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    return this.running?.then(() => undefined) ?? Promise.resolve();
  }

  /** Decides and brings the label in line; resolves the decision, or undefined when the Node could not be read. One at a time. */
  check(): Promise<RestoreCapability | undefined> {
    this.running ??= this.reconcile().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async reconcile(): Promise<RestoreCapability | undefined> {
    const { nodeName: name, logger } = this.options;
    let node: V1Node;
    try {
      node = await this.nodes.readNode({ name });
    } catch (error) {
      logger.error({ node: name, err: describeApiError(error) }, `could not read this node to decide its ${nodeLabels.RESTORE_RUNTIME} label; retrying later`);
      return undefined;
    }
    const capability = await detectRestoreCapability(node.status?.nodeInfo?.containerRuntimeVersion ?? '', this.options.setting, this.options.configPaths);
    this.capable.reset();
    this.capable.set({ runtime: capability.runtime }, capability.restore ? 1 : 0);
    const wanted = capability.restore ? capability.runtime : undefined;
    const current = node.metadata?.labels?.[nodeLabels.RESTORE_RUNTIME];
    if (current !== wanted) {
      try {
        await this.nodes.patchNode(
          // null removes the label (RFC 7386); only this one label is sent.
          { name, body: { metadata: { labels: { [nodeLabels.RESTORE_RUNTIME]: wanted ?? null } } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      } catch (error) {
        logger.error(
          { node: name, label: nodeLabels.RESTORE_RUNTIME, wanted: wanted ?? null, err: describeApiError(error) },
          `could not ${wanted === undefined ? 'remove' : 'set'} the node label ${nodeLabels.RESTORE_RUNTIME} (RBAC get and patch on nodes, and the admission policy cryo-node-agent-own-node-labels, allow it); retrying later`,
        );
        return capability;
      }
    }
    const summary = `${wanted ?? '-'}: ${capability.why}`;
    if (summary !== this.recorded) {
      this.recorded = summary;
      const fields = { node: name, runtime: capability.runtime, restore: capability.restore, label: wanted ?? null };
      if (capability.restore) logger.info(fields, `this node restores ${capability.runtime} checkpoints (label ${nodeLabels.RESTORE_RUNTIME}=${capability.runtime}): ${capability.why}`);
      else logger.warn(fields, `this node restores no checkpoints (no label ${nodeLabels.RESTORE_RUNTIME}): ${capability.why}`);
      await this.event(node, capability);
    }
    return capability;
  }

  /** An Event on the Node (`kubectl describe node`); failures only logged. */
  private async event(node: V1Node, capability: RestoreCapability): Promise<void> {
    const name = this.options.nodeName;
    const note = capability.restore
      ? `restores ${capability.runtime} checkpoints, labelled ${nodeLabels.RESTORE_RUNTIME}=${capability.runtime}: ${capability.why}`
      : `restores no checkpoints, so pods restoring from one are not scheduled here (no label ${nodeLabels.RESTORE_RUNTIME}): ${capability.why}`;
    // Events about cluster-scoped objects go to "default" (EventRecorder), where the kubelet puts the Node's own.
    await this.events.record({
      regarding: { apiVersion: 'v1', kind: 'Node', name, uid: node.metadata?.uid },
      type: capability.restore ? 'Normal' : 'Warning',
      reason: capability.restore ? 'RestoreRuntimeDetected' : 'RestoreNotPossible',
      action: 'DetectRestoreRuntime',
      note,
    });
  }
}
