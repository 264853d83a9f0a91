/**
 * Every Node label Cryo reads or writes (README.md#annotations lists them with the annotations);
 * nothing else in the code spells these strings. Only the node agent writes them, each on its own
 * Node, and manifests/node-agent-node-policy.yaml lets it change nothing else.
 */
import { ANNOTATION_PREFIX } from './annotations.ts';

/** Cryo's labels share the annotations' prefix; the admission policy lets the agent change only labels under it. */
export const PREFIX = ANNOTATION_PREFIX;

/**
 * Set by the node agent on its Node: the runtime kind (`containerd` or `cri-o`, a ContainerRuntime)
 * whose checkpoints this node's runtime restores; absent when it restores none. The webhook
 * requires it of every restoring pod (node affinity), with the value of the checkpoint's runtime.
 */
export const RESTORE_RUNTIME = `${PREFIX}restore-runtime`;
