/**
 * Reading the daemon's JSON-with-comments config file with positions: every value keeps the
 * offset jsonc-parser's parseTree gives it, so an error names `file:line:col` and the field
 * path (`config.json:12:5: limits.maxInFlight: expected a positive integer, found -3`).
 *
 * Sections validated elsewhere (the `nats` section, by the event bus) use the same helpers:
 * `source.locate(['nats', 'url'])` gives `file:line:col` of that value, and
 * `source.error(['nats', 'url'], 'a nats:// URL', node)` the ConfigError to throw.
 */

import { findNodeAtLocation, type Node, type ParseError, parseTree, printParseErrorCode } from 'jsonc-parser';
import { ThunderpacError } from '../runtime/errors.js';

export type ConfigPath = readonly (string | number)[];

/** A configuration that cannot be used: exit 2 with this one line. */
export class ConfigError extends ThunderpacError {
  /** `file:line:col`, or the flag / `defaults` the value came from. */
  readonly where: string;
  /** Field path, e.g. `limits.maxInFlight` ('' for the whole file). */
  readonly path: string;

  constructor(where: string, path: string, detail: string) {
    super('DAEMON_CONFIG', `${where}: ${path ? `${path}: ` : ''}${detail}`);
    this.where = where;
    this.path = path;
  }
}

/** `limits.maxInFlight`, `policy.tokens["ci.bot"].roles[1]`. */
export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[\w$-]+$/.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** What a value is, for "found …": its JSON text (bounded), or its kind for containers. */
export function describeNode(source: ConfigSource, node: Node | undefined): string {
  if (!node) return 'nothing';
  if (node.type === 'object') return 'an object';
  if (node.type === 'array') return 'an array';
  const text = source.text.slice(node.offset, node.offset + node.length);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

export class ConfigSource {
  /** The file's name as given (relative paths stay relative: that is what the user typed). */
  readonly file: string | null;
  readonly text: string;
  readonly root: Node | undefined;
  #lineStarts: number[] | null = null;

  private constructor(file: string | null, text: string, root: Node | undefined) {
    this.file = file;
    this.text = text;
    this.root = root;
  }

  /** No file: every value is a default or a flag. */
  static none(): ConfigSource {
    return new ConfigSource(null, '', undefined);
  }

  /** Parse `text` (JSON with comments and trailing commas); a syntax error is a ConfigError. */
  static parse(file: string, text: string): ConfigSource {
    const errors: ParseError[] = [];
    const root = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false });
    const source = new ConfigSource(file, text, root);
    const first = errors[0];
    if (first) {
      throw new ConfigError(
        source.position(first.offset),
        '',
        `not valid JSON: ${printParseErrorCode(first.error)}`,
      );
    }
    if (root?.type !== 'object') {
      throw new ConfigError(source.position(root?.offset ?? 0), '', 'expected a JSON object at the top');
    }
    return source;
  }

  /** `file:line:col` (1-based) of a byte offset in the file. */
  position(offset: number): string {
    if (this.file === null) return 'defaults';
    this.#lineStarts ??= lineStarts(this.text);
    const starts = this.#lineStarts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((starts[mid] ?? 0) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return `${this.file}:${lo + 1}:${offset - (starts[lo] ?? 0) + 1}`;
  }

  /** The value node at `path`, if the file has one. */
  node(path: ConfigPath): Node | undefined {
    return this.root ? findNodeAtLocation(this.root, path as (string | number)[]) : undefined;
  }

  /**
   * `file:line:col` of the value at `path`, or of its nearest ancestor present in the file (a
   * missing field is reported where its object is); `defaults` when there is no file.
   */
  locate(path: ConfigPath): string {
    if (!this.root) return 'defaults';
    for (let n = path.length; n >= 0; n--) {
      const node = this.node(path.slice(0, n));
      if (node) return this.position(node.offset);
    }
    return this.position(0);
  }

  /** `where: path: expected X, found Y` for the value at `path`. */
  error(path: ConfigPath, expected: string, node?: Node): ConfigError {
    return new ConfigError(
      node ? this.position(node.offset) : this.locate(path),
      formatPath(path),
      `expected ${expected}, found ${describeNode(this, node ?? this.node(path))}`,
    );
  }
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) starts.push(i + 1);
    else if (c === 13 && text.charCodeAt(i + 1) !== 10) starts.push(i + 1);
  }
  return starts;
}

// ------------------------------------------------------------- readers of typed values

/**
 * The members of the object at `path`, refusing keys not in `allowed` (a typo must not pass
 * silently) and duplicate keys. Absent → empty map.
 */
export function readObject(
  source: ConfigSource,
  path: ConfigPath,
  node: Node | undefined,
  allowed: readonly string[] | null,
): Map<string, Node> {
  const members = new Map<string, Node>();
  if (!node) return members;
  if (node.type !== 'object') throw source.error(path, 'an object', node);
  for (const property of node.children ?? []) {
    const [key, value] = property.children ?? [];
    if (!key || !value) continue;
    const name = String(key.value);
    if (allowed && !allowed.includes(name)) {
      throw new ConfigError(
        source.position(key.offset),
        formatPath([...path, name]),
        `unknown key (expected one of: ${allowed.join(', ')})`,
      );
    }
    if (members.has(name)) {
      throw new ConfigError(source.position(key.offset), formatPath([...path, name]), 'duplicate key');
    }
    members.set(name, value);
  }
  return members;
}

export function readString(
  source: ConfigSource,
  path: ConfigPath,
  node: Node,
  what = 'a non-empty string',
  check?: (value: string) => boolean,
): string {
  if (node.type !== 'string' || (node.value as string).length === 0) throw source.error(path, what, node);
  const value = node.value as string;
  if (check && !check(value)) throw source.error(path, what, node);
  return value;
}

export function readInteger(
  source: ConfigSource,
  path: ConfigPath,
  node: Node,
  min: number,
  max: number,
  what = min === 1 ? 'a positive integer' : `an integer from ${min} to ${max}`,
): number {
  const value = node.value;
  if (node.type !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw source.error(
      path,
      max < Number.MAX_SAFE_INTEGER && min === 1 ? `${what} (at most ${max})` : what,
      node,
    );
  }
  return value as number;
}

export function readStringArray(
  source: ConfigSource,
  path: ConfigPath,
  node: Node,
  what: string,
  check: (value: string) => boolean,
): string[] {
  if (node.type !== 'array') throw source.error(path, `an array of ${what}`, node);
  return (node.children ?? []).map((child, i) => readString(source, [...path, i], child, what, check));
}
