/** The test cluster harness: a real kubelet, runtime and CRIU on this machine (see docs/cluster.md). */
export * from './cluster-lock.ts';
export * from './cluster-settings.ts';
export * from './hooked-app.ts';
export * from './open-cluster.ts';
export * from './sdk-app.ts';
