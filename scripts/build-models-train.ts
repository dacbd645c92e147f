/**
 * Training for the shipped MLP and CNN, written so that it reproduces bit for bit.
 *
 * Why this shape: `npm run build:models` must regenerate model.onnx byte for byte on any
 * machine and any V8 version (the test suite checks it). Float64 arithmetic with +, −, ×, ÷
 * and sqrt is exactly specified by IEEE 754 and JS has no fused multiply-add, so training that
 * uses only those is reproducible; Math.exp/log are not exactly specified. Hence:
 *   - the loss is the multi-class squared hinge (Weston–Watkins): Σ_{j≠y} max(0, 1 + s_j − s_y)²
 *     — no exp, no log; the exported models still end in Softmax, which turns the learned
 *     scores into probabilities at inference;
 *   - plain (full-batch or fixed-order) gradient descent with momentum, fixed epoch counts,
 *     orders drawn from SeededRandom; no early stopping on a clock.
 * Inputs are standardized for training and the scaling is folded into the first layer, so the
 * models take raw inputs (centimetres for Iris, [0, 1] pixels for shapes).
 *
 *   trainMlp        4 → 16 (ReLU) → 3, full backprop, full batch
 *   convFeatures    the CNN's convolution stack (seeded filters, not trained: a random-feature
 *                   CNN) evaluated in float64 on float32 weights
 *   trainHead       the CNN's Gemm(10) classifier on those features, per-sample SGD
 */

import { SeededRandom } from '../src/backends/onnx/rng.js';
import type { Dataset } from './build-models-data.js';

export interface Dense {
  /** Row-major [out, in], as ONNX Gemm with transB = 1 expects. */
  readonly w: Float32Array;
  readonly b: Float32Array;
  readonly inputs: number;
  readonly outputs: number;
}

interface Standardizer {
  readonly mean: Float64Array;
  readonly std: Float64Array;
}

function standardizer(x: readonly Float64Array[]): Standardizer {
  const d = x[0]!.length;
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (const row of x) for (let i = 0; i < d; i++) mean[i]! += row[i]!;
  for (let i = 0; i < d; i++) mean[i]! /= x.length;
  for (const row of x)
    for (let i = 0; i < d; i++) {
      const dev = row[i]! - mean[i]!;
      std[i]! += dev * dev;
    }
  // A constant feature keeps scale 1 (its weight then only moves the bias).
  for (let i = 0; i < d; i++) std[i] = Math.sqrt(std[i]! / x.length) || 1;
  return { mean, std };
}

function apply(s: Standardizer, row: Float64Array): Float64Array {
  const out = new Float64Array(row.length);
  for (let i = 0; i < row.length; i++) out[i] = (row[i]! - s.mean[i]!) / s.std[i]!;
  return out;
}

/** Fold z = (x − mean) / std into a dense layer that reads z, so it reads x. */
function fold(w: Float64Array, b: Float64Array, outputs: number, s: Standardizer): Dense {
  const inputs = s.mean.length;
  const fw = new Float32Array(outputs * inputs);
  const fb = new Float32Array(outputs);
  for (let o = 0; o < outputs; o++) {
    let bias = b[o]!;
    for (let i = 0; i < inputs; i++) {
      const scaled = w[o * inputs + i]! / s.std[i]!;
      fw[o * inputs + i] = scaled;
      bias -= scaled * s.mean[i]!;
    }
    fb[o] = bias;
  }
  return { w: fw, b: fb, inputs, outputs };
}

/** d(loss)/d(scores) of the squared hinge for one sample, into `grad`; returns the loss. */
function hingeGrad(scores: Float64Array, label: number, grad: Float64Array): number {
  let loss = 0;
  let sum = 0;
  for (let j = 0; j < scores.length; j++) {
    if (j === label) continue;
    const m = 1 + scores[j]! - scores[label]!;
    if (m > 0) {
      loss += m * m;
      grad[j] = 2 * m;
      sum += 2 * m;
    } else grad[j] = 0;
  }
  grad[label] = -sum;
  return loss;
}

function heInit(rng: SeededRandom, n: number, fanIn: number): Float64Array {
  const std = Math.sqrt(2 / fanIn);
  return Float64Array.from({ length: n }, () => rng.normal(0, std));
}

export interface MlpOptions {
  readonly seed: number;
  readonly hidden: number;
  readonly classes: number;
  readonly epochs: number;
  readonly learningRate: number;
  readonly momentum: number;
  readonly l2: number;
}

/** A one-hidden-layer ReLU MLP, full-batch gradient descent with momentum. */
export function trainMlp(data: Dataset, o: MlpOptions): { layer1: Dense; layer2: Dense } {
  const rng = new SeededRandom(o.seed);
  const s = standardizer(data.x);
  const z = data.x.map((row) => apply(s, row));
  const d = s.mean.length;
  const { hidden: H, classes: C } = o;
  const params = [heInit(rng, H * d, d), new Float64Array(H), heInit(rng, C * H, H), new Float64Array(C)];
  const [w1, b1, w2, b2] = params as [Float64Array, Float64Array, Float64Array, Float64Array];
  const grads = params.map((p) => new Float64Array(p.length));
  const velocity = params.map((p) => new Float64Array(p.length));
  const h = new Float64Array(H);
  const scores = new Float64Array(C);
  const ds = new Float64Array(C);
  const dh = new Float64Array(H);
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    for (const g of grads) g.fill(0);
    const [gw1, gb1, gw2, gb2] = grads as [Float64Array, Float64Array, Float64Array, Float64Array];
    for (let n = 0; n < z.length; n++) {
      const x = z[n]!;
      for (let k = 0; k < H; k++) {
        let v = b1[k]!;
        for (let i = 0; i < d; i++) v += w1[k * d + i]! * x[i]!;
        h[k] = Math.max(v, 0);
      }
      for (let j = 0; j < C; j++) {
        let v = b2[j]!;
        for (let k = 0; k < H; k++) v += w2[j * H + k]! * h[k]!;
        scores[j] = v;
      }
      hingeGrad(scores, data.y[n]!, ds);
      dh.fill(0);
      for (let j = 0; j < C; j++) {
        gb2[j]! += ds[j]!;
        for (let k = 0; k < H; k++) {
          gw2[j * H + k]! += ds[j]! * h[k]!;
          dh[k]! += ds[j]! * w2[j * H + k]!;
        }
      }
      for (let k = 0; k < H; k++) {
        if (h[k]! <= 0) continue;
        gb1[k]! += dh[k]!;
        for (let i = 0; i < d; i++) gw1[k * d + i]! += dh[k]! * x[i]!;
      }
    }
    for (let p = 0; p < params.length; p++) {
      const param = params[p]!;
      const grad = grads[p]!;
      const vel = velocity[p]!;
      const decay = p % 2 === 0 ? o.l2 : 0; // weights, not biases
      for (let i = 0; i < param.length; i++) {
        const g = grad[i]! / z.length + decay * param[i]!;
        vel[i] = o.momentum * vel[i]! - o.learningRate * g;
        param[i]! += vel[i]!;
      }
    }
  }
  return {
    layer1: fold(w1, b1, H, s),
    layer2: {
      w: Float32Array.from(w2),
      b: Float32Array.from(b2),
      inputs: H,
      outputs: C,
    },
  };
}

export interface Conv {
  /** [out, in, 3, 3] */
  readonly w: Float32Array;
  readonly b: Float32Array;
  readonly inputs: number;
  readonly outputs: number;
}

/** Conv 3×3 (pad 1, stride 1) → ReLU → MaxPool 2×2, on a [c, side, side] image. */
function convReluPool(input: Float64Array, side: number, conv: Conv): Float64Array {
  const { inputs: ci, outputs: co } = conv;
  const plane = side * side;
  const acc = new Float64Array(plane);
  const half = side / 2;
  const out = new Float64Array(co * half * half);
  for (let o = 0; o < co; o++) {
    acc.fill(conv.b[o]!);
    for (let c = 0; c < ci; c++) {
      const src = c * plane;
      for (let ky = 0; ky < 3; ky++) {
        for (let kx = 0; kx < 3; kx++) {
          const wv = conv.w[((o * ci + c) * 3 + ky) * 3 + kx]!;
          const y0 = ky === 0 ? 1 : 0;
          const y1 = ky === 2 ? side - 1 : side;
          const x0 = kx === 0 ? 1 : 0;
          const x1 = kx === 2 ? side - 1 : side;
          for (let y = y0; y < y1; y++) {
            const row = src + (y + ky - 1) * side + kx - 1;
            const dst = y * side;
            for (let x = x0; x < x1; x++) acc[dst + x]! += wv * input[row + x]!;
          }
        }
      }
    }
    for (let y = 0; y < half; y++) {
      for (let x = 0; x < half; x++) {
        const i = 2 * y * side + 2 * x;
        const m = Math.max(acc[i]!, acc[i + 1]!, acc[i + side]!, acc[i + side + 1]!);
        out[o * half * half + y * half + x] = Math.max(m, 0); // ReLU commutes with max
      }
    }
  }
  return out;
}

/** The flattened output of two conv/ReLU/pool stages, in ONNX Flatten order (C, H, W). */
export function convFeatures(image: Float64Array, side: number, conv1: Conv, conv2: Conv): Float64Array {
  return convReluPool(convReluPool(image, side, conv1), side / 2, conv2);
}

export interface HeadOptions {
  readonly seed: number;
  readonly classes: number;
  readonly epochs: number;
  readonly learningRate: number;
  readonly l2: number;
}

/** A linear classifier on fixed features, per-sample SGD in a seeded order. */
export function trainHead(features: Dataset, o: HeadOptions): Dense {
  const rng = new SeededRandom(o.seed);
  const s = standardizer(features.x);
  const z = features.x.map((row) => apply(s, row));
  const d = s.mean.length;
  const C = o.classes;
  const w = new Float64Array(C * d);
  const b = new Float64Array(C);
  const scores = new Float64Array(C);
  const ds = new Float64Array(C);
  const order = z.map((_, i) => i);
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng.next() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    // 1/t-style decay keeps late epochs from undoing early ones; exact in IEEE arithmetic.
    const lr = o.learningRate / (1 + epoch);
    for (const n of order) {
      const x = z[n]!;
      for (let j = 0; j < C; j++) {
        let v = b[j]!;
        for (let i = 0; i < d; i++) v += w[j * d + i]! * x[i]!;
        scores[j] = v;
      }
      hingeGrad(scores, features.y[n]!, ds);
      for (let j = 0; j < C; j++) {
        const g = ds[j]!;
        b[j]! -= lr * g;
        const base = j * d;
        for (let i = 0; i < d; i++) w[base + i]! -= lr * (g * x[i]! + o.l2 * w[base + i]!);
      }
    }
  }
  return fold(w, b, C, s);
}

/** A dense layer's outputs on raw input (float32 weights, float64 arithmetic). */
function denseScores(layer: Dense, x: Float64Array): Float64Array {
  const out = new Float64Array(layer.outputs);
  for (let j = 0; j < layer.outputs; j++) {
    let v = layer.b[j]!;
    for (let i = 0; i < layer.inputs; i++) v += layer.w[j * layer.inputs + i]! * x[i]!;
    out[j] = v;
  }
  return out;
}

/** argmax of a dense layer's scores on raw input, for held-out accuracy (ties to the first). */
export function predictDense(layer: Dense, x: Float64Array): number {
  const scores = denseScores(layer, x);
  let best = 0;
  for (let j = 1; j < scores.length; j++) if (scores[j]! > scores[best]!) best = j;
  return best;
}

/** The MLP's hidden activations (ReLU of the first layer) on raw input. */
export function hiddenOf(layer: Dense, x: Float64Array): Float64Array {
  return denseScores(layer, x).map((v) => Math.max(v, 0));
}
