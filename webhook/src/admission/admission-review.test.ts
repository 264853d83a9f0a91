import { describe, expect, it } from 'vitest';
import { loadAdmissionReview } from '@cryo/test';
import { BadAdmissionReview, parseAdmissionReview } from './admission-review.ts';

function refusal(body: unknown): BadAdmissionReview {
  try {
    parseAdmissionReview(body);
  } catch (err) {
    expect(err).toBeInstanceOf(BadAdmissionReview);
    return err as BadAdmissionReview;
  }
  throw new Error('expected the review to be refused');
}

describe('parseAdmissionReview', () => {
  it('accepts what the kube-apiserver sends', () => {
    const review = loadAdmissionReview('restore-deployment-pod');
    expect(parseAdmissionReview(review).uid).toBe(review.request.uid);
  });

  it.each([
    ['a JSON array', [], 'not-an-object', 'must be a JSON object'],
    ['null', null, 'not-an-object', 'must be a JSON object'],
    ['another kind', { kind: 'Pod', apiVersion: 'admission.k8s.io/v1' }, 'wrong-kind', 'kind must be "AdmissionReview", got "Pod"'],
    ['admission.k8s.io/v1beta1', { kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1beta1', request: {} }, 'wrong-api-version', 'set admissionReviewVersions: [v1]'],
    ['no request', { kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1' }, 'missing-request', 'no "request" object'],
  ])('refuses %s', (_what, body, reason, message) => {
    const err = refusal(body);
    expect(err.reason).toBe(reason);
    expect(err.message).toContain(message);
  });

  it('refuses a request without a uid', () => {
    const review = loadAdmissionReview('plain-pod');
    (review.request as { uid?: string }).uid = '';
    expect(refusal(review)).toMatchObject({ reason: 'missing-uid', message: 'request.uid must be a non-empty string, got ""' });
  });

  it('refuses an unknown operation, naming the ones it knows', () => {
    const review = loadAdmissionReview('plain-pod');
    review.request.operation = 'PATCH';
    expect(refusal(review).message).toBe('request.operation must be one of CREATE, UPDATE, DELETE, CONNECT, got "PATCH"');
  });

  it('refuses a CREATE without the object', () => {
    const review = loadAdmissionReview('plain-pod');
    delete (review.request as { object?: unknown }).object;
    expect(refusal(review).reason).toBe('missing-object');
  });

  it('refuses a request without its kind', () => {
    const review = loadAdmissionReview('plain-pod');
    delete (review.request as { kind?: unknown }).kind;
    expect(refusal(review).reason).toBe('missing-kind');
  });

  it.each([
    ['kind.kind a number', (r: Request) => (r.kind = { group: '', version: 'v1', kind: 7 }), 'missing-kind', 'request.kind.kind must be a string, got a number'],
    ['kind.group null', (r: Request) => (r.kind = { group: null, version: 'v1', kind: 'Pod' }), 'missing-kind', 'request.kind.group must be a string, got null'],
    ['kind an array', (r: Request) => (r.kind = []), 'missing-kind', 'request.kind must be an object with group, version and kind, got an array'],
    ['object null on CREATE', (r: Request) => (r.object = null), 'missing-object', 'request.object must be the object being created, got null'],
    ['namespace a number', (r: Request) => (r.namespace = 3), 'bad-field', 'request.namespace must be a string, got a number'],
    ['namespace not a name', (r: Request) => (r.namespace = '../kube-system'), 'bad-field', 'request.namespace must be a namespace name, got "../kube-system"'],
    ['dryRun a string', (r: Request) => (r.dryRun = 'true'), 'bad-field', 'request.dryRun must be a boolean, got "true"'],
    ['uid an object', (r: Request) => (r.uid = { id: 1 }), 'missing-uid', 'request.uid must be a non-empty string, got an object'],
  ])('refuses %s, naming the field', (_what, spoil, reason, message) => {
    const review = loadAdmissionReview('plain-pod');
    spoil(review.request);
    expect(refusal(review)).toMatchObject({ reason, message });
  });

  it('describes what it got without serializing it: nesting too deep for JSON.stringify, or a huge string', () => {
    const deep = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`) as unknown;
    expect(refusal({ kind: deep, apiVersion: 'admission.k8s.io/v1' }).message).toBe('kind must be "AdmissionReview", got an array');
    const huge = 'x'.repeat(1_000_000);
    const message = refusal({ kind: 'AdmissionReview', apiVersion: huge }).message;
    expect(message).toContain(`got "${'x'.repeat(64)}…"`);
    expect(message.length).toBeLessThan(300);
  });
});

type Request = Record<string, unknown>;
