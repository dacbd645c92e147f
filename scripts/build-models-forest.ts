/**
 * A small random forest (CART, Gini impurity) for the shipped tree-ensemble model: real splits
 * learned from data (Iris, see build-models-data.ts), reproducible bit for bit (seeded
 * bootstrap, deterministic tie-breaks, only comparisons and +, −, ×, ÷).
 */

import { SeededRandom } from '../src/backends/onnx/rng.js';

export interface Dataset {
  readonly x: Float32Array[];
  readonly y: number[];
}

export type TreeNode =
  | {
      readonly kind: 'branch';
      readonly id: number;
      readonly feature: number;
      readonly threshold: number;
      readonly left: number;
      readonly right: number;
    }
  | { readonly kind: 'leaf'; readonly id: number; readonly counts: readonly number[] };

function gini(counts: readonly number[], n: number): number {
  if (n === 0) return 0;
  let s = 1;
  for (const c of counts) s -= (c / n) * (c / n);
  return s;
}

function countsOf(idx: readonly number[], y: readonly number[], classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (const i of idx) counts[y[i]!]!++;
  return counts;
}

/** One CART tree on rows `idx`; nodes numbered in creation order (root 0). */
export function trainTree(
  data: Dataset,
  idx: readonly number[],
  opts: { depth: number; classes: number; featuresPerSplit: number; rng: SeededRandom },
): TreeNode[] {
  const nodes: TreeNode[] = [];
  const F = data.x[0]!.length;
  const grow = (rows: readonly number[], depth: number): number => {
    const id = nodes.length;
    nodes.push({ kind: 'leaf', id, counts: [] }); // placeholder, replaced below
    const counts = countsOf(rows, data.y, opts.classes);
    const pure = counts.filter((c) => c > 0).length <= 1;
    let best: { feature: number; threshold: number; score: number } | null = null;
    if (depth < opts.depth && !pure && rows.length >= 4) {
      // Random feature subset per split (random forest), in a deterministic order.
      const features = Array.from({ length: F }, (_, f) => f)
        .map((f) => ({ f, k: opts.rng.next() }))
        .sort((a, b) => a.k - b.k)
        .slice(0, opts.featuresPerSplit)
        .map((e) => e.f)
        .sort((a, b) => a - b);
      for (const f of features) {
        const sorted = [...rows].sort((a, b) => data.x[a]![f]! - data.x[b]![f]! || a - b);
        const left = new Array<number>(opts.classes).fill(0);
        for (let i = 0; i < sorted.length - 1; i++) {
          left[data.y[sorted[i]!]!]!++;
          const v = data.x[sorted[i]!]![f]!;
          const next = data.x[sorted[i + 1]!]![f]!;
          if (v === next) continue;
          const nl = i + 1;
          const nr = sorted.length - nl;
          const right = counts.map((c, k) => c - left[k]!);
          const score = (nl * gini(left, nl) + nr * gini(right, nr)) / sorted.length;
          // float32 midpoint strictly between the two values, so `x <= t` splits exactly here.
          let t = Math.fround((v + next) / 2);
          if (!(t >= v && t < next)) t = v;
          if (!best || score < best.score - 1e-12) best = { feature: f, threshold: t, score };
        }
      }
    }
    if (!best || best.score >= gini(counts, rows.length) - 1e-12) {
      nodes[id] = { kind: 'leaf', id, counts };
      return id;
    }
    const b = best;
    const leftRows = rows.filter((r) => data.x[r]![b.feature]! <= b.threshold);
    const rightRows = rows.filter((r) => data.x[r]![b.feature]! > b.threshold);
    const l = grow(leftRows, depth + 1);
    const r = grow(rightRows, depth + 1);
    nodes[id] = { kind: 'branch', id, feature: b.feature, threshold: b.threshold, left: l, right: r };
    return id;
  };
  grow(idx, 0);
  return nodes;
}

export function trainForest(
  data: Dataset,
  opts: { seed: number; trees: number; depth: number; classes: number; featuresPerSplit: number },
): TreeNode[][] {
  const rng = new SeededRandom(opts.seed);
  const forest: TreeNode[][] = [];
  for (let t = 0; t < opts.trees; t++) {
    const boot = Array.from({ length: data.y.length }, () => Math.floor(rng.next() * data.y.length));
    forest.push(trainTree(data, boot, { ...opts, rng }));
  }
  return forest;
}

/** Leaf class distribution, smoothed (+1) so no two classes ever tie exactly at a leaf. */
export function leafWeights(counts: readonly number[], trees: number): number[] {
  const n = counts.reduce((a, b) => a + b, 0);
  return counts.map((c, k) => Math.fround((c + 1 + k * 1e-3) / (n + counts.length + 3e-3) / trees));
}

export function predict(forest: readonly TreeNode[][], x: Float32Array, classes: number): number {
  const scores = new Array<number>(classes).fill(0);
  for (const tree of forest) {
    let node = tree[0]!;
    while (node.kind === 'branch') node = tree[x[node.feature]! <= node.threshold ? node.left : node.right]!;
    leafWeights(node.counts, forest.length).forEach((w, k) => {
      scores[k]! += w;
    });
  }
  let best = 0;
  for (let k = 1; k < classes; k++) if (scores[k]! > scores[best]!) best = k;
  return best;
}
