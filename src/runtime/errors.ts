/**
 * Typed errors of the runtime core. Every error thunderpac raises has a stable `code` that
 * callers and receipts can rely on; the message is for humans and may change.
 */

export class ThunderpacError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }

  /** The part of the error that goes into a receipt: stable, small, free of stack traces. */
  toReceiptError(): ReceiptError {
    return { code: this.code, message: this.message };
  }
}

export interface ReceiptError {
  readonly code: string;
  readonly message: string;
  readonly limit?: LimitName;
}

export type ValidationErrorKind =
  | 'type' // the value has the wrong JavaScript/encoding type
  | 'missing' // a required field is absent
  | 'unexpected' // a field the schema does not declare
  | 'dtype' // tensor element type differs
  | 'rank' // tensor has the wrong number of dimensions
  | 'dim' // a fixed dimension differs
  | 'dim-binding' // a named dimension is bound to two different sizes
  | 'range' // an element or number is outside [min, max]
  | 'size' // byte length outside [minBytes, maxBytes] or data length != product(shape)
  | 'schema'; // the schema itself is malformed

/** Input or output that does not match its schema: says where, what was expected, what was found. */
export class ValidationError extends ThunderpacError {
  readonly kind: ValidationErrorKind;
  readonly path: string;
  readonly expected: string;
  readonly found: string;

  constructor(kind: ValidationErrorKind, path: string, expected: string, found: string) {
    super(
      `VALIDATION_${kind.toUpperCase().replace('-', '_')}`,
      `${path}: expected ${expected}, found ${found}`,
    );
    this.kind = kind;
    this.path = path;
    this.expected = expected;
    this.found = found;
  }
}

export type LimitName = 'timeoutMs' | 'memoryMb' | 'fuel' | 'maxInputBytes' | 'maxOutputBytes' | 'callDepth';

/** A sandbox limit was hit while running; the execution fails with a receipt saying which. */
export class LimitExceededError extends ThunderpacError {
  readonly limit: LimitName;
  readonly allowed: number;
  readonly observed: number | undefined;

  constructor(limit: LimitName, allowed: number, observed?: number, detail?: string) {
    const seen = observed === undefined ? '' : ` (observed ${observed})`;
    super(
      `LIMIT_${limit.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`,
      `${detail ?? `limit ${limit} exceeded`}: allowed ${allowed}${seen}`,
    );
    this.limit = limit;
    this.allowed = allowed;
    this.observed = observed;
  }

  override toReceiptError(): ReceiptError {
    return { code: this.code, message: this.message, limit: this.limit };
  }
}

/** Illegal state-machine transition of a sandbox (e.g. execute while executing). */
export class SandboxStateError extends ThunderpacError {
  constructor(from: string, to: string) {
    super('SANDBOX_STATE', `illegal sandbox transition ${from} -> ${to}`);
  }
}

/** A program was refused at build or prepare time (malformed, forbidden feature, forbidden import...). */
export class ProgramRejectedError extends ThunderpacError {
  readonly reason: string;
  readonly subject: string | undefined;

  constructor(code: string, reason: string, message: string, subject?: string) {
    super(code, message);
    this.reason = reason;
    this.subject = subject;
  }
}

/** The guest program itself failed: a trap, or a negative result through the guest ABI. */
export class GuestError extends ThunderpacError {}

/** A WASI command called proc_exit with a non-zero code; its stderr (bounded) comes along. */
export class GuestExitError extends GuestError {
  readonly exitCode: number;
  readonly stderr: Uint8Array;

  constructor(entry: string, exitCode: number, stderr: Uint8Array) {
    // The head of stderr goes into the message (and so the receipt): it is deterministic,
    // and it is usually the one line that says why.
    const head = new TextDecoder().decode(stderr.subarray(0, 512)).trimEnd();
    super('GUEST_EXIT', `guest '${entry}' exited with code ${exitCode}${head ? `: ${head}` : ''}`);
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** The store found content whose digest does not match its address, or a missing object. */
export class IntegrityError extends ThunderpacError {
  readonly expected: string | undefined;
  readonly actual: string | undefined;

  constructor(message: string, expected?: string, actual?: string) {
    super('INTEGRITY', message);
    this.expected = expected;
    this.actual = actual;
  }
}

export class NotFoundError extends ThunderpacError {
  constructor(what: string, id: string) {
    super('NOT_FOUND', `${what} ${id} not found`);
  }
}

/** Anything thrown that is not ours becomes a ThunderpacError so receipts stay uniform. */
export function asThunderpacError(err: unknown): ThunderpacError {
  if (err instanceof ThunderpacError) return err;
  if (err instanceof Error) {
    const code =
      typeof (err as { code?: unknown }).code === 'string'
        ? (err as unknown as { code: string }).code
        : 'INTERNAL';
    return new ThunderpacError(code, err.message, { cause: err });
  }
  return new ThunderpacError('INTERNAL', String(err));
}
