import { describe, expect, it } from 'vitest';
import { describeRbacAttributes, isGranted, rbacAttributesOf, type RbacGrant } from './kube-apiserver-rbac.ts';

const request = (method: string, pathAndQuery: string) => {
  const url = new URL(pathAndQuery, 'https://apiserver.invalid');
  return rbacAttributesOf({ method, path: url.pathname, query: url.searchParams });
};

describe('rbacAttributesOf: a recorded request as the kube-apiserver authorizes it', () => {
  it.each([
    ['GET', '/api/v1/namespaces/cryo-system/secrets/cryo-webhook-tls', 'get secrets cryo-system/cryo-webhook-tls'],
    ['POST', '/api/v1/namespaces/cryo-system/secrets', 'create secrets cryo-system'],
    ['PUT', '/api/v1/namespaces/cryo-system/secrets/cryo-webhook-tls', 'update secrets cryo-system/cryo-webhook-tls'],
    ['GET', '/apis/cryo.dev/v1alpha1/checkpoints', 'list cryo.dev/checkpoints'],
    ['GET', '/apis/cryo.dev/v1alpha1/checkpoints?watch=true&resourceVersion=7', 'watch cryo.dev/checkpoints'],
    ['GET', '/apis/cryo.dev/v1alpha1/namespaces/shop/checkpoints/warm', 'get cryo.dev/checkpoints shop/warm'],
    ['PUT', '/apis/cryo.dev/v1alpha1/namespaces/shop/checkpoints/warm/status', 'update cryo.dev/checkpoints/status shop/warm'],
    ['POST', '/api/v1/namespaces/shop/pods/web/eviction', 'create pods/eviction shop/web'],
    ['DELETE', '/api/v1/namespaces/shop/pods', 'deletecollection pods shop'],
    ['GET', '/api/v1/namespaces/shop', 'get namespaces shop'],
    // One object selected by name: resourceNames may allow it.
    ['GET', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations?watch=1&fieldSelector=metadata.name%3Dcryo-webhook', 'watch admissionregistration.k8s.io/mutatingwebhookconfigurations cryo-webhook'],
    ['GET', '/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a', 'list pods'],
  ])('%s %s: %s', (method, path, described) => {
    expect(describeRbacAttributes(request(method, path)!)).toBe(described);
  });

  it('has none for a non-resource URL', () => {
    expect(request('GET', '/version')).toBeUndefined();
  });
});

describe('isGranted', () => {
  const grants: RbacGrant[] = [
    { rules: [{ apiGroups: ['cryo.dev'], resources: ['checkpoints'], verbs: ['get', 'list', 'watch'] }] },
    { rules: [{ apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: ['cryo-webhook'], verbs: ['get', 'watch', 'patch'] }] },
    { namespace: 'cryo-system', rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['create'] }, { apiGroups: [''], resources: ['secrets'], resourceNames: ['cryo-webhook-tls'], verbs: ['get', 'update'] }] },
  ];
  const granted = (method: string, path: string) => isGranted(request(method, path)!, grants);

  it('grants what a rule names, a namespaced rule only in its namespace, resourceNames only by that name', () => {
    expect(granted('GET', '/apis/cryo.dev/v1alpha1/namespaces/shop/checkpoints/warm')).toBe(true);
    expect(granted('PATCH', '/apis/cryo.dev/v1alpha1/namespaces/shop/checkpoints/warm')).toBe(false);
    expect(granted('POST', '/api/v1/namespaces/cryo-system/secrets')).toBe(true);
    expect(granted('POST', '/api/v1/namespaces/shop/secrets')).toBe(false);
    expect(granted('PUT', '/api/v1/namespaces/cryo-system/secrets/cryo-webhook-tls')).toBe(true);
    expect(granted('PUT', '/api/v1/namespaces/cryo-system/secrets/other')).toBe(false);
    expect(granted('GET', '/api/v1/namespaces/cryo-system/secrets?watch=true&fieldSelector=metadata.name%3Dcryo-webhook-tls')).toBe(false);
    expect(granted('GET', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations?watch=true&fieldSelector=metadata.name%3Dcryo-webhook')).toBe(true);
    expect(granted('GET', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations?watch=true')).toBe(false);
    expect(granted('PUT', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/cryo-webhook')).toBe(false);
  });

  it('takes wildcards as the authorizer does', () => {
    expect(isGranted(request('DELETE', '/api/v1/namespaces/shop/pods/web')!, [{ rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }] }])).toBe(true);
  });
});
