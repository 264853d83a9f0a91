/** The shared test tooling of Cryo's components: import from '@cryo/test'. */
export * from './fakes/kube-apiserver.ts';
export * from './fakes/kubelet.ts';
export * from './fixtures/load-fixture.ts';
export * from './harness/capture-logger.ts';
export * from './harness/checkpoint-archives.ts';
export * from './harness/free-port.ts';
export * from './harness/https-request.ts';
export * from './harness/https-test-server.ts';
export * from './harness/line-echo-upstream.ts';
export * from './harness/option-docs.ts';
export * from './harness/projected-volume.ts';
export * from './harness/rejection.ts';
export * from './harness/wait-for.ts';
export * from './harness/migration-fixtures.ts';
export * from './harness/lab/index.ts';
export * from './harness/cluster/index.ts';
