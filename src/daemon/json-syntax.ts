/**
 * Where a JSON text stops being JSON: byte offset, line, column and what was expected there.
 *
 * JSON.parse says *that* a body is malformed, but V8's message sometimes gives a position and
 * sometimes quotes the client's bytes back instead; a client fixing its request needs the place.
 * This scanner runs only after JSON.parse has failed, so it favours being obviously right over
 * being fast. It is iterative (a stack of open containers), so hostile nesting cannot overflow
 * the call stack.
 */

export interface JsonSyntaxProblem {
  /** Offset in UTF-16 code units into the text (the byte offset for ASCII bodies). */
  readonly offset: number;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly column: number;
  /** What the grammar allowed at that place. */
  readonly expected: string;
  /** What was there: a short description, never more than one character of the input. */
  readonly found: string;
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

/** The first syntax error in `text`, or null if it is valid JSON. */
export function locateJsonSyntaxError(text: string): JsonSyntaxProblem | null {
  let i = 0;
  const n = text.length;
  // Each open container: what comes next inside it.
  type State = 'array-first' | 'array-next' | 'object-first' | 'object-next';
  const stack: State[] = [];

  const fail = (expected: string): JsonSyntaxProblem => {
    let line = 1;
    let lineStart = 0;
    for (let k = 0; k < i && k < n; k++) {
      if (text.charCodeAt(k) === 0x0a) {
        line++;
        lineStart = k + 1;
      }
    }
    return { offset: i, line, column: i - lineStart + 1, expected, found: describe(text, i) };
  };
  const skipWs = (): void => {
    while (i < n && WS.has(text.charCodeAt(i))) i++;
  };

  /** A string starting at i (the opening quote); false if malformed (i at the culprit). */
  const string = (): boolean => {
    i++;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return true;
      }
      if (c < 0x20) return false;
      if (c === 0x5c) {
        i++;
        const e = text[i];
        if (e === 'u') {
          for (let k = 1; k <= 4; k++) {
            if (!/[0-9a-fA-F]/.test(text[i + k] ?? '')) {
              i += k;
              return false;
            }
          }
          i += 5;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) return false;
      }
      i++;
    }
    return false;
  };

  const number = (): boolean => {
    if (text[i] === '-') i++;
    if (text[i] === '0') i++;
    else if (/[1-9]/.test(text[i] ?? '')) while (/[0-9]/.test(text[i] ?? '')) i++;
    else return false;
    if (text[i] === '.') {
      i++;
      if (!/[0-9]/.test(text[i] ?? '')) return false;
      while (/[0-9]/.test(text[i] ?? '')) i++;
    }
    if (text[i] === 'e' || text[i] === 'E') {
      i++;
      if (text[i] === '+' || text[i] === '-') i++;
      if (!/[0-9]/.test(text[i] ?? '')) return false;
      while (/[0-9]/.test(text[i] ?? '')) i++;
    }
    return true;
  };

  /** One value at i: a scalar is consumed whole; a container is opened (pushed). */
  const value = (): JsonSyntaxProblem | null => {
    skipWs();
    const c = text[i];
    if (c === '{') {
      i++;
      stack.push('object-first');
      return null;
    }
    if (c === '[') {
      i++;
      stack.push('array-first');
      return null;
    }
    if (c === '"') return string() ? null : fail('a string character, an escape or a closing quote');
    if (c === '-' || (c !== undefined && /[0-9]/.test(c))) return number() ? null : fail('a digit');
    for (const word of ['true', 'false', 'null']) {
      if (c === word[0]) {
        for (let k = 0; k < word.length; k++, i++) {
          if (text[i] !== word[k]) return fail(`'${word}'`);
        }
        return null;
      }
    }
    return fail('a value (object, array, string, number, true, false or null)');
  };

  let problem = value();
  while (problem === null && stack.length > 0) {
    skipWs();
    const top = stack[stack.length - 1];
    const c = text[i];
    if (top === 'array-first' || top === 'array-next') {
      if (c === ']') {
        i++;
        stack.pop();
        continue;
      }
      if (top === 'array-next') {
        if (c !== ',') return fail("',' or ']'");
        i++;
      }
      stack[stack.length - 1] = 'array-next';
      problem = value();
      continue;
    }
    // Objects: a key, ':', a value; then ',' or '}'.
    if (top === 'object-first' && c === '}') {
      i++;
      stack.pop();
      continue;
    }
    if (top === 'object-next') {
      if (c === '}') {
        i++;
        stack.pop();
        continue;
      }
      if (c !== ',') return fail("',' or '}'");
      i++;
      skipWs();
    }
    if (text[i] !== '"')
      return fail(
        top === 'object-first'
          ? "a property name in double quotes or '}'"
          : 'a property name in double quotes',
      );
    if (!string()) return fail('a string character, an escape or a closing quote');
    skipWs();
    if (text[i] !== ':') return fail("':' after the property name");
    i++;
    stack[stack.length - 1] = 'object-next';
    problem = value();
  }
  if (problem) return problem;
  skipWs();
  return i < n ? fail('the end of the body after the JSON value') : null;
}

function describe(text: string, i: number): string {
  if (i >= text.length) return 'the end of the body';
  const c = text.charCodeAt(i);
  if (c < 0x20 || c === 0x7f) return `control character U+${c.toString(16).padStart(4, '0').toUpperCase()}`;
  return `'${String.fromCodePoint(text.codePointAt(i) ?? c)}'`;
}
