/**
 * How deeply a JSON text nests, measured without recursion. JSON.parse copes with any nesting,
 * but what usually follows it (JSON.stringify, String() of an array, schema walks) recurses,
 * and 100,000 levels overflow the stack; readers of untrusted JSON measure first.
 */

/** Deeper than any program, tensor, sample or value file thunderpac reads (BMv2 JSON is ~10). */
export const MAX_JSON_DEPTH = 512;

/** The deepest nesting of arrays and objects in `text`, outside strings; stops past `limit`. */
export function jsonDepth(text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}
