/**
 * An independent implementation of the ONNX operators thunderpac's shipped models use, in plain
 * TypeScript with float64 arithmetic: the golden model that onnxruntime's outputs are compared
 * with (equivalence.ts) and that produces the expected outputs in sample_io.json.
 *
 * It shares nothing with onnxruntime but the model file: weights and attributes are read from
 * the protobuf, the arithmetic is written out here loop by loop, following the operator
 * definitions in the ONNX spec (Gemm, Relu, Conv, MaxPool, Flatten, Softmax, and ai.onnx.ml
 * TreeEnsembleClassifier). Anything else is refused rather than guessed at.
 */

import {
  attr,
  attrString,
  attrStrings,
  decodeModel,
  type ModelProto,
  type NodeProto,
  ONNX_DTYPE,
  tensorFloats,
} from './onnx-proto.js';

/** A value flowing through the graph: float64 data for float tensors, bigint for int64 labels. */
export interface RefValue {
  readonly dims: readonly number[];
  readonly data: Float64Array | BigInt64Array;
}

export type RefFeeds = Readonly<
  Record<string, { readonly shape: readonly number[]; readonly data: ArrayLike<number> }>
>;

function ints(node: NodeProto, name: string, fallback: number[]): number[] {
  const a = attr(node, name);
  return a?.ints && a.ints.length > 0 ? a.ints.map(Number) : fallback;
}

function int(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a?.i !== undefined && a.type !== 0 ? Number(a.i) : fallback;
}

function float(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a && a.type !== 0 && a.f !== undefined ? a.f : fallback;
}

function floats(v: RefValue, what: string): Float64Array {
  if (!(v.data instanceof Float64Array)) throw new Error(`${what}: expected a float tensor`);
  return v.data;
}

function gemm(node: NodeProto, a: RefValue, b: RefValue, c: RefValue | undefined): RefValue {
  const alpha = float(node, 'alpha', 1);
  const beta = float(node, 'beta', 1);
  const transA = int(node, 'transA', 0) === 1;
  const transB = int(node, 'transB', 0) === 1;
  const [ar, ac] = a.dims as [number, number];
  const [br, bc] = b.dims as [number, number];
  const M = transA ? ac : ar;
  const K = transA ? ar : ac;
  const N = transB ? br : bc;
  if ((transB ? bc : br) !== K) throw new Error(`Gemm ${node.name}: inner dims differ`);
  const A = floats(a, 'Gemm A');
  const B = floats(b, 'Gemm B');
  const C = c ? floats(c, 'Gemm C') : undefined;
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const av = transA ? A[k * ac + m]! : A[m * ac + k]!;
        const bv = transB ? B[n * bc + k]! : B[k * bc + n]!;
        s += av * bv;
      }
      let bias = 0;
      if (C) bias = C.length === N ? C[n]! : C.length === 1 ? C[0]! : C[m * N + n]!;
      out[m * N + n] = alpha * s + beta * bias;
    }
  }
  return { dims: [M, N], data: out };
}

function conv(node: NodeProto, x: RefValue, w: RefValue, b: RefValue | undefined): RefValue {
  if (int(node, 'group', 1) !== 1) throw new Error(`Conv ${node.name}: only group=1`);
  const [N, C, H, W] = x.dims as [number, number, number, number];
  const [M, WC, KH, KW] = w.dims as [number, number, number, number];
  if (WC !== C) throw new Error(`Conv ${node.name}: channels differ`);
  const [pt, pl, pb, pr] = ints(node, 'pads', [0, 0, 0, 0]) as [number, number, number, number];
  const [sh, sw] = ints(node, 'strides', [1, 1]) as [number, number];
  const [dh, dw] = ints(node, 'dilations', [1, 1]) as [number, number];
  const OH = Math.floor((H + pt + pb - dh * (KH - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + pl + pr - dw * (KW - 1) - 1) / sw) + 1;
  const X = floats(x, 'Conv X');
  const Wt = floats(w, 'Conv W');
  const B = b ? floats(b, 'Conv B') : undefined;
  const out = new Float64Array(N * M * OH * OW);
  for (let n = 0; n < N; n++)
    for (let m = 0; m < M; m++)
      for (let oy = 0; oy < OH; oy++)
        for (let ox = 0; ox < OW; ox++) {
          let s = B ? B[m]! : 0;
          for (let c = 0; c < C; c++)
            for (let ky = 0; ky < KH; ky++) {
              const iy = oy * sh - pt + ky * dh;
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < KW; kx++) {
                const ix = ox * sw - pl + kx * dw;
                if (ix < 0 || ix >= W) continue;
                s += X[((n * C + c) * H + iy) * W + ix]! * Wt[((m * C + c) * KH + ky) * KW + kx]!;
              }
            }
          out[((n * M + m) * OH + oy) * OW + ox] = s;
        }
  return { dims: [N, M, OH, OW], data: out };
}

function maxPool(node: NodeProto, x: RefValue): RefValue {
  const [N, C, H, W] = x.dims as [number, number, number, number];
  const [KH, KW] = ints(node, 'kernel_shape', []) as [number, number];
  const [sh, sw] = ints(node, 'strides', [1, 1]) as [number, number];
  const [pt, pl, pb, pr] = ints(node, 'pads', [0, 0, 0, 0]) as [number, number, number, number];
  const OH = Math.floor((H + pt + pb - KH) / sh) + 1;
  const OW = Math.floor((W + pl + pr - KW) / sw) + 1;
  const X = floats(x, 'MaxPool X');
  const out = new Float64Array(N * C * OH * OW);
  for (let nc = 0; nc < N * C; nc++)
    for (let oy = 0; oy < OH; oy++)
      for (let ox = 0; ox < OW; ox++) {
        let best = Number.NEGATIVE_INFINITY;
        for (let ky = 0; ky < KH; ky++) {
          const iy = oy * sh - pt + ky;
          if (iy < 0 || iy >= H) continue;
          for (let kx = 0; kx < KW; kx++) {
            const ix = ox * sw - pl + kx;
            if (ix < 0 || ix >= W) continue;
            best = Math.max(best, X[(nc * H + iy) * W + ix]!);
          }
        }
        out[(nc * OH + oy) * OW + ox] = best;
      }
  return { dims: [N, C, OH, OW], data: out };
}

function softmax(node: NodeProto, x: RefValue): RefValue {
  const rank = x.dims.length;
  const axis = (int(node, 'axis', -1) + rank) % rank;
  if (axis !== rank - 1) throw new Error(`Softmax ${node.name}: only the last axis`);
  const D = x.dims[rank - 1]!;
  const X = floats(x, 'Softmax X');
  const out = new Float64Array(X.length);
  for (let row = 0; row < X.length / D; row++) {
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < D; i++) max = Math.max(max, X[row * D + i]!);
    let sum = 0;
    for (let i = 0; i < D; i++) sum += Math.exp(X[row * D + i]! - max);
    for (let i = 0; i < D; i++) out[row * D + i] = Math.exp(X[row * D + i]! - max) / sum;
  }
  return { dims: x.dims, data: out };
}

/** ai.onnx.ml TreeEnsembleClassifier with BRANCH_LEQ/LT/GTE/GT/EQ/NEQ nodes, post_transform NONE. */
function treeEnsembleClassifier(node: NodeProto, x: RefValue): RefValue[] {
  const post = attrString(node, 'post_transform') ?? 'NONE';
  if (post !== 'NONE') throw new Error(`TreeEnsembleClassifier: post_transform ${post} not implemented`);
  const treeIds = ints(node, 'nodes_treeids', []);
  const nodeIds = ints(node, 'nodes_nodeids', []);
  const featureIds = ints(node, 'nodes_featureids', []);
  const modes = attrStrings(node, 'nodes_modes');
  // Thresholds are float32 in the model and onnxruntime compares in float32; so do we.
  const values = (attr(node, 'nodes_values')?.floats ?? []).map(Math.fround);
  const trueIds = ints(node, 'nodes_truenodeids', []);
  const falseIds = ints(node, 'nodes_falsenodeids', []);
  const classTree = ints(node, 'class_treeids', []);
  const classNode = ints(node, 'class_nodeids', []);
  const classIds = ints(node, 'class_ids', []);
  const classWeights = attr(node, 'class_weights')?.floats ?? [];
  const labels = ints(node, 'classlabels_int64s', []);
  const K = labels.length;
  const key = (t: number, n: number) => `${t}:${n}`;
  const index = new Map<string, number>();
  treeIds.forEach((t, i) => {
    index.set(key(t, nodeIds[i]!), i);
  });
  const leafWeights = new Map<string, [number, number][]>();
  classTree.forEach((t, i) => {
    const k = key(t, classNode[i]!);
    const list = leafWeights.get(k) ?? [];
    list.push([classIds[i]!, Math.fround(classWeights[i]!)]);
    leafWeights.set(k, list);
  });
  const trees = [...new Set(treeIds)].sort((a, b) => a - b);
  const [N, F] = x.dims as [number, number];
  const X = floats(x, 'TreeEnsembleClassifier X');
  const scores = new Float64Array(N * K);
  const label = new BigInt64Array(N);
  for (let n = 0; n < N; n++) {
    for (const t of trees) {
      let i = index.get(key(t, 0))!;
      for (;;) {
        const mode = modes[i]!;
        if (mode === 'LEAF') break;
        const v = Math.fround(X[n * F + featureIds[i]!]!);
        const th = values[i]!;
        const go =
          mode === 'BRANCH_LEQ'
            ? v <= th
            : mode === 'BRANCH_LT'
              ? v < th
              : mode === 'BRANCH_GTE'
                ? v >= th
                : mode === 'BRANCH_GT'
                  ? v > th
                  : mode === 'BRANCH_EQ'
                    ? v === th
                    : v !== th;
        const next = index.get(key(t, go ? trueIds[i]! : falseIds[i]!));
        if (next === undefined) throw new Error(`TreeEnsembleClassifier: tree ${t} has a dangling node`);
        i = next;
      }
      for (const [c, w] of leafWeights.get(key(t, nodeIds[i]!)) ?? [])
        scores[n * K + c] = scores[n * K + c]! + w;
    }
    let best = 0;
    for (let c = 1; c < K; c++) if (scores[n * K + c]! > scores[n * K + best]!) best = c;
    label[n] = BigInt(labels[best]!);
  }
  return [
    { dims: [N], data: label },
    { dims: [N, K], data: scores },
  ];
}

/** Run a model on float inputs; returns every graph output by name. */
export function referenceRun(model: ModelProto | Uint8Array, feeds: RefFeeds): Record<string, RefValue> {
  const m = model instanceof Uint8Array ? decodeModel(model) : model;
  const env = new Map<string, RefValue>();
  for (const init of m.graph.initializer) {
    if (init.data_type !== ONNX_DTYPE.FLOAT) throw new Error(`initializer ${init.name}: only float32`);
    env.set(init.name, { dims: init.dims.map(Number), data: Float64Array.from(tensorFloats(init)) });
  }
  for (const [name, f] of Object.entries(feeds)) {
    env.set(name, { dims: [...f.shape], data: Float64Array.from(f.data, Math.fround) });
  }
  const get = (name: string | undefined): RefValue | undefined => {
    if (name === undefined || name === '') return undefined;
    const v = env.get(name);
    if (!v) throw new Error(`value '${name}' is not defined before use`);
    return v;
  };
  for (const node of m.graph.node) {
    const [i0, i1, i2] = node.input;
    let outs: RefValue[];
    switch (`${node.domain ?? ''}/${node.op_type}`) {
      case '/Gemm':
        outs = [gemm(node, get(i0)!, get(i1)!, get(i2))];
        break;
      case '/Relu': {
        const x = get(i0)!;
        outs = [{ dims: x.dims, data: floats(x, 'Relu').map((v) => Math.max(v, 0)) }];
        break;
      }
      case '/Conv':
        outs = [conv(node, get(i0)!, get(i1)!, get(i2))];
        break;
      case '/MaxPool':
        outs = [maxPool(node, get(i0)!)];
        break;
      case '/Flatten': {
        const x = get(i0)!;
        const axis = int(node, 'axis', 1);
        const outer = x.dims.slice(0, axis).reduce((a, b) => a * b, 1);
        outs = [{ dims: [outer, x.data.length / outer], data: x.data }];
        break;
      }
      case '/Softmax':
        outs = [softmax(node, get(i0)!)];
        break;
      case 'ai.onnx.ml/TreeEnsembleClassifier':
        outs = treeEnsembleClassifier(node, get(i0)!);
        break;
      default:
        throw new Error(`reference: operator ${node.domain || 'ai.onnx'}.${node.op_type} not implemented`);
    }
    node.output.forEach((name, i) => {
      const v = outs[i];
      if (v && name !== '') env.set(name, v);
    });
  }
  const result: Record<string, RefValue> = {};
  for (const o of m.graph.output) result[o.name] = get(o.name)!;
  return result;
}
