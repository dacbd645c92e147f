/**
 * The datasets the shipped models are trained on — nothing downloaded, everything reproducible.
 *
 *   iris     Fisher's Iris data (150 flowers, 4 measurements in cm, 3 species), shipped as
 *            scripts/datasets/iris.csv (see scripts/datasets/README.md for provenance).
 *            Split: every 5th row is held out (30 test rows, 10 per species), 120 train.
 *   shapes   32×32 RGB images of 10 kinds of shapes, rendered here from a seed: random
 *            colours (foreground brighter than background), position, size and pixel noise.
 *            Rendering uses integer geometry and +, −, × only, so it is identical everywhere.
 */

import { readFileSync } from 'node:fs';
import { SeededRandom } from '../src/backends/onnx/rng.js';
import { packagePath } from '../src/runtime/package-root.js';

export interface Dataset {
  readonly x: Float64Array[];
  readonly y: number[];
}

export const IRIS_SPECIES = ['Iris-setosa', 'Iris-versicolor', 'Iris-virginica'] as const;

let irisRows: { x: Float64Array; y: number }[] | undefined;

function loadIris(): { x: Float64Array; y: number }[] {
  if (irisRows) return irisRows;
  const text = readFileSync(packagePath('scripts/datasets/iris.csv'), 'utf8');
  const lines = text.trim().split('\n').slice(1);
  irisRows = lines.map((line, i) => {
    const cells = line.split(',');
    const y = IRIS_SPECIES.indexOf(cells[4] as (typeof IRIS_SPECIES)[number]);
    const x = Float64Array.from(cells.slice(0, 4), Number);
    if (y < 0 || x.some((v) => !Number.isFinite(v)))
      throw new Error(`iris.csv:${i + 2}: malformed row '${line}'`);
    return { x, y };
  });
  if (irisRows.length !== 150) throw new Error(`iris.csv: expected 150 rows, found ${irisRows.length}`);
  return irisRows;
}

/** Iris, split deterministically: row i is held out when i % 5 === 0. */
export function iris(part: 'train' | 'test'): Dataset {
  const rows = loadIris().filter((_, i) => (i % 5 === 0) === (part === 'test'));
  return { x: rows.map((r) => r.x), y: rows.map((r) => r.y) };
}

export const SHAPES = [
  'disk',
  'square',
  'triangle',
  'ring',
  'frame',
  'horizontal-stripes',
  'vertical-stripes',
  'x-cross',
  'plus',
  'checkerboard',
] as const;

const SIDE = 32;

function inside(kind: number, x: number, y: number, cx: number, cy: number, r: number, p: number): boolean {
  const dx = x - cx;
  const dy = y - cy;
  const ax = Math.abs(dx);
  const ay = Math.abs(dy);
  const d2 = dx * dx + dy * dy;
  switch (kind) {
    case 0:
      return d2 <= r * r;
    case 1:
      return ax <= r && ay <= r;
    case 2:
      return dy >= -r && dy <= r && 2 * ax <= dy + r;
    case 3:
      return d2 <= r * r && d2 >= (r - 2) * (r - 2);
    case 4:
      return Math.max(ax, ay) <= r && Math.max(ax, ay) >= r - 1;
    case 5:
      return Math.floor(y / p) % 2 === 0;
    case 6:
      return Math.floor(x / p) % 2 === 0;
    case 7:
      return Math.abs(ax - ay) <= 1 && Math.max(ax, ay) <= r;
    case 8:
      return (ax <= 1 && ay <= r) || (ay <= 1 && ax <= r);
    default:
      return (Math.floor(x / p) + Math.floor(y / p)) % 2 === 0;
  }
}

/** One image, NCHW order (3 planes of 32×32), values in [0, 1]. */
function render(rng: SeededRandom, kind: number): Float64Array {
  const bg = [rng.uniform(0, 0.45), rng.uniform(0, 0.45), rng.uniform(0, 0.45)];
  const fg = [rng.uniform(0.55, 1), rng.uniform(0.55, 1), rng.uniform(0.55, 1)];
  const cx = 12 + Math.floor(rng.next() * 9);
  const cy = 12 + Math.floor(rng.next() * 9);
  const r = 5 + Math.floor(rng.next() * 5);
  const p = 3 + Math.floor(rng.next() * 3);
  const img = new Float64Array(3 * SIDE * SIDE);
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      const on = inside(kind, x, y, cx, cy, r, p);
      for (let c = 0; c < 3; c++) {
        const v = (on ? fg[c]! : bg[c]!) + rng.uniform(-0.1, 0.1);
        img[c * SIDE * SIDE + y * SIDE + x] = v < 0 ? 0 : Math.min(v, 1);
      }
    }
  }
  return img;
}

/** `perClass` images of each shape, interleaved by class, rendered from `seed`. */
export function shapes(seed: number, perClass: number): Dataset {
  const rng = new SeededRandom(seed);
  const x: Float64Array[] = [];
  const y: number[] = [];
  for (let i = 0; i < perClass; i++) {
    for (let k = 0; k < SHAPES.length; k++) {
      x.push(render(rng, k));
      y.push(k);
    }
  }
  return { x, y };
}
