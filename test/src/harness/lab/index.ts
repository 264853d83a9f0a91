/** The CRIU lab harness: real crun + CRIU containers in pods (see docs/lab.md). */
export * from './criu-log.ts';
export * from './lab-container.ts';
export * from './lab-pod.ts';
export * from './lab-podman.ts';
export * from './lab-registry.ts';
export * from './lab-settings.ts';
export * from './oci-spec.ts';
export * from './open-lab.ts';
export * from './pod-http.ts';
export * from './run-command.ts';
