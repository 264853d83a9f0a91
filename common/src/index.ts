export * from './api/checkpoint.ts';
export * as annotations from './annotations.ts';
export * from './hook-socket.ts';
export * from './logger.ts';
export * from './metrics.ts';
export * from './options.ts';
export * from './kube/kube-config.ts';
export * from './kube/api-errors.ts';
export * from './kube/watched-cache.ts';
