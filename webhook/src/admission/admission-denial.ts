/** A pod the webhook refuses to admit: the apiserver shows `message` to whoever created it. */
export class AdmissionDenial extends Error {
  override name = 'AdmissionDenial';
  /** An HTTP 4xx code: 404 no such checkpoint, 409 checkpoint not ready, 422 pod cannot restore it. */
  readonly code: number;
  /** A short machine-readable cause, used as a metric label. */
  readonly reason: string;
  constructor(code: number, reason: string, message: string) {
    super(message);
    this.code = code;
    this.reason = reason;
  }
}
