/** Errors of the onnx backend and its model registry. */

import { ThunderpacError } from '../../runtime/errors.js';

/**
 * A model that failed a trust check: a checksum mismatch, no checksum, or a path outside the
 * model directory. Never retried, never downgraded to a warning unless the registry was told
 * to allow untrusted models.
 */
export class ModelSecurityError extends ThunderpacError {
  readonly model: string;
  readonly expected: string | undefined;
  readonly actual: string | undefined;

  constructor(
    code: 'MODEL_CHECKSUM_MISMATCH' | 'MODEL_UNTRUSTED' | 'MODEL_DIGEST_PIN',
    model: string,
    message: string,
    expected?: string,
    actual?: string,
  ) {
    super(code, message);
    this.model = model;
    this.expected = expected;
    this.actual = actual;
  }
}

/** A worker died (crash, kill, out of memory) while it held a request. */
export class OnnxWorkerCrashedError extends ThunderpacError {
  constructor(detail: string) {
    super('ONNX_WORKER_CRASHED', `onnx worker died: ${detail}`);
  }
}

/** The pool or pipeline is shutting down and refuses new work. */
export class ShuttingDownError extends ThunderpacError {
  constructor(what: string) {
    super('SHUTTING_DOWN', `${what} is shutting down`);
  }
}
