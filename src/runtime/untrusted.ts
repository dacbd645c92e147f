/**
 * Reading what a caller handed in (sandbox options, execute requests) as untrusted values:
 * every field is read once, and anything that goes wrong while reading it — a getter that
 * throws, a Proxy trap, a revoked Proxy, an object without a primitive form — becomes a
 * ValidationError that names the field. Callers copy what they read into values of their own,
 * so nothing they checked can change between the check and its use.
 */

import { ThunderpacError, ValidationError } from './errors.js';

/** A short description of any value for an error message; never throws, never calls user code. */
export function describeUntrusted(x: unknown): string {
  switch (typeof x) {
    case 'undefined':
      return 'undefined';
    case 'string':
      return JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}…` : x);
    case 'number':
    case 'boolean':
    case 'bigint':
      return `${typeof x} ${String(x)}`;
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
    default:
      if (x === null) return 'null';
      try {
        if (Array.isArray(x)) return 'an array';
      } catch {
        return 'a revoked proxy';
      }
      return 'an object';
  }
}

/** The error for a field whose read threw. */
function unreadable(path: string, expected: string, err: unknown): ValidationError {
  const why = err instanceof Error ? err.message : describeUntrusted(err);
  return new ValidationError('type', path, expected, `a value that threw when read (${why.slice(0, 120)})`);
}

/** `obj[key]`, with a throw while reading it reported as a ValidationError naming `path`. */
export function readField(obj: object, key: string, path: string, expected = 'a readable value'): unknown {
  try {
    return (obj as Record<string, unknown>)[key];
  } catch (err) {
    throw unreadable(path, expected, err);
  }
}

/**
 * Run `read`, turning anything it throws that is not already a ThunderpacError into a
 * ValidationError naming `path`: for validations that walk a caller's value (its own getters
 * and Proxy traps run inside).
 */
export function guardedRead<T>(path: string, expected: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof ThunderpacError) throw err;
    throw unreadable(path, expected, err);
  }
}

/** Whether `x` is a non-null object that is not an array (Array.isArray throws on a revoked Proxy). */
export function isRecord(x: unknown, path: string): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null) return false;
  try {
    return !Array.isArray(x); // no closure: this runs on every execution
  } catch (err) {
    throw unreadable(path, 'an object', err);
  }
}

/**
 * Copy an array-like the caller handed in (an Array or a Proxy of one): its length and each
 * element read once, at most `max` elements.
 */
export function copyArray(x: unknown, path: string, expected: string, max: number): unknown[] {
  if (typeof x !== 'object' || x === null || !guardedRead(path, expected, () => Array.isArray(x))) {
    throw new ValidationError('type', path, expected, describeUntrusted(x));
  }
  const length = readField(x, 'length', `${path}.length`, expected);
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) {
    throw new ValidationError('type', `${path}.length`, 'a length', describeUntrusted(length));
  }
  if (length > max) throw new ValidationError('size', path, `at most ${max} elements`, String(length));
  const out = new Array<unknown>(length);
  for (let i = 0; i < length; i++) out[i] = readField(x, String(i), `${path}[${i}]`, expected);
  return out;
}
