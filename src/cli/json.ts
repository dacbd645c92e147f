/**
 * JSON files named on the command line: nesting measured first (runtime/json-depth.ts) and
 * refused past MAX_JSON_DEPTH, then parsed; either failure names the file.
 */

import { ThunderpacError } from '../runtime/errors.js';
import { jsonDepth, MAX_JSON_DEPTH } from '../runtime/json-depth.js';

export { jsonDepth, MAX_JSON_DEPTH };

/** A JSON file that cannot be used: main() prints the message, exits 2. */
export class CliJsonError extends ThunderpacError {
  readonly path: string;

  constructor(what: string, path: string, options?: { cause?: unknown }) {
    super('CLI_JSON', `${what}: ${path}`, options);
    this.path = path;
  }
}

/** Parses the JSON text of the file `path` (named by `flag`), bounded in depth. */
export function parseJsonFile(text: string, path: string, flag: string): unknown {
  const depth = jsonDepth(text);
  if (depth > MAX_JSON_DEPTH) {
    throw new CliJsonError(`${flag} nests JSON deeper than ${MAX_JSON_DEPTH} levels`, path);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliJsonError(`${flag} is not valid JSON (${(err as Error).message})`, path, { cause: err });
  }
}
