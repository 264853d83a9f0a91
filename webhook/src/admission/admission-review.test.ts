import { describe, expect, it } from 'vitest';
import { loadAdmissionReview } from '../../../test/src/fixtures/load-fixture.ts';
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
    expect(refusal(review)).toMatchObject({ reason: 'missing-uid', message: 'request.uid must be a non-empty string' });
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
});
