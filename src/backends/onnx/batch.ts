/**
 * Concatenating requests into one batch along dimension 0 and splitting the outputs back:
 * what dynamic batching does to tensors. Every input of every request must share dtype and
 * the trailing dims; a request whose tensors do not fit is never merged (the caller runs it
 * alone, so its own validation error reaches it).
 */

import type { Tensor, TensorData } from '../../runtime/types.js';

export type Tensors = Readonly<Record<string, Tensor>>;

function rows(t: Tensor): number {
  return t.shape[0] ?? 1;
}

/** A key that is equal for requests that can share a batch: names, dtypes, trailing dims. */
export function batchKey(tensors: Tensors): string {
  return Object.keys(tensors)
    .sort()
    .map((n) => {
      const t = tensors[n]!;
      return `${n}:${t.dtype}:${t.shape.length === 0 ? 'scalar' : t.shape.slice(1).join('x')}`;
    })
    .join('|');
}

/** Rows each request contributes (dimension 0 of its first input, in name order). */
export function batchRows(tensors: Tensors): number {
  const first = Object.keys(tensors).sort()[0];
  return first === undefined ? 0 : rows(tensors[first]!);
}

export function concatBatch(requests: readonly Tensors[]): Tensors {
  if (requests.length === 1) return requests[0]!;
  const out: Record<string, Tensor> = {};
  for (const name of Object.keys(requests[0]!)) {
    const parts = requests.map((r) => r[name]!);
    const first = parts[0]!;
    const total = parts.reduce((n, t) => n + t.data.length, 0);
    const data = new (first.data.constructor as new (n: number) => TensorData)(total);
    let at = 0;
    for (const t of parts) {
      (data as unknown as { set(a: ArrayLike<unknown>, o: number): void }).set(
        t.data as ArrayLike<unknown>,
        at,
      );
      at += t.data.length;
    }
    out[name] = {
      dtype: first.dtype,
      shape: [parts.reduce((n, t) => n + rows(t), 0), ...first.shape.slice(1)],
      data,
    };
  }
  return out;
}

/** Split every output along dimension 0 into pieces of `counts` rows. */
export function splitBatch(outputs: Tensors, counts: readonly number[]): Tensors[] {
  if (counts.length === 1) return [outputs];
  const result: Record<string, Tensor>[] = counts.map(() => ({}));
  for (const [name, t] of Object.entries(outputs)) {
    const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
    let row = 0;
    counts.forEach((n, i) => {
      const data = t.data.slice(row * per, (row + n) * per) as TensorData;
      result[i]![name] = { dtype: t.dtype, shape: [n, ...t.shape.slice(1)], data };
      row += n;
    });
  }
  return result;
}
