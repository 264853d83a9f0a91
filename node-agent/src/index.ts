export { HookServer, HookPrepareError } from './hooks/hook-server.ts';
export type { HookServerOptions, PrepareOptions, PrepareResult, PreparedSession, FinishOutcome, SessionSummary, HookServerEvents } from './hooks/hook-server.ts';
export { HookPodWatcher } from './hooks/hook-pod-watcher.ts';
export type { HookPodWatcherOptions } from './hooks/hook-pod-watcher.ts';
export { HookMetrics } from './hooks/hook-metrics.ts';
export { hookPodOf, describePod, POD_UID_PATTERN } from './hooks/hook-pod.ts';
export type { HookPod } from './hooks/hook-pod.ts';
