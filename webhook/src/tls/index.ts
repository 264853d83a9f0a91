/** The webhook's serving TLS: `createTlsSource` for the server, the pieces for tests and tools. */
export { createTlsSource, type TlsConfig, type TlsSourceDeps } from './serving-tls.ts';
export type { TlsKeyPair, TlsSource, TlsStatus } from './tls-source.ts';
export { GeneratedTlsSource, type GeneratedTlsSourceOptions, type GeneratedTlsStatus } from './generated-tls-source.ts';
export { FileTlsSource, type FileTlsSourceOptions } from './file-tls-source.ts';
export { SharedTlsSecret, assessSecret, type SharedTlsMaterial, type SharedTlsSecretOptions, type SyncResult } from './shared-tls-secret.ts';
export { CaBundleKeeper, caBundlePatch, type CaBundleKeeperOptions, type CaBundleState } from './ca-bundle.ts';
export { clientRefusal, readClientCaFile, type ClientAuth, type ClientRefusal } from './client-auth.ts';
