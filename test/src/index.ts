/** The shared test tooling of Cryo's components: import from '@cryo/test'. */
export * from './fakes/kube-apiserver.ts';
