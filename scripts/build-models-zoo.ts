/**
 * The models thunderpac ships, defined in code: each is a function from a seed to an ONNX
 * ModelProto, so `npm run build:models` reproduces models/ byte for byte.
 *
 *   mlp   Iris: 4 features → Gemm(16) → Relu → Gemm(3) → Softmax   (classifier, batch dim N)
 *   cnn   1×3×32×32 image → Conv(8,3×3) → Relu → MaxPool(2) → Conv(16,3×3) → Relu → MaxPool(2)
 *         → Flatten → Gemm(10) → Softmax                           (shape classifier, batch N)
 *   tree  Iris: 4 features → ai.onnx.ml TreeEnsembleClassifier, 5 trees of depth 3, 3 classes
 *
 * Every model is trained (build-models-train.ts, build-models-forest.ts) on a dataset from
 * build-models-data.ts — Fisher's Iris data, shipped, or shapes rendered from a seed — with
 * reproducible-by-construction arithmetic; the CNN's convolution filters are seeded, its
 * classifier trained. Held-out accuracy goes into each model's doc_string. Nothing here reads
 * the clock or the environment.
 */

import {
  ATTR,
  type AttributeProto,
  floatTensor,
  type ModelProto,
  type NodeProto,
  ONNX_DTYPE,
  type ValueInfoProto,
} from '../src/backends/onnx/onnx-proto.js';
import { SeededRandom } from '../src/backends/onnx/rng.js';
import { iris, SHAPES, shapes } from './build-models-data.js';
import { leafWeights, predict, trainForest } from './build-models-forest.js';
import {
  type Conv,
  convFeatures,
  hiddenOf,
  predictDense,
  trainHead,
  trainMlp,
} from './build-models-train.js';

export interface ZooModel {
  readonly name: string;
  readonly version: string;
  readonly description: string;
  readonly seed: number;
  build(): ModelProto;
  /** Sample input for sample_io.json and the supervisor's health probe. */
  sampleInput(): Record<string, { dtype: 'float32'; shape: number[]; data: number[] }>;
  /** Value range of the fixed inputs of the equivalence check. */
  readonly inputRange: readonly [number, number];
}

const enc = new TextEncoder();

function a(
  name: string,
  value: number | string | number[] | string[],
  kind?: 'float' | 'floats',
): AttributeProto {
  if (typeof value === 'string') return { name, type: ATTR.STRING, s: enc.encode(value) };
  if (typeof value === 'number')
    return kind === 'float' ? { name, type: ATTR.FLOAT, f: value } : { name, type: ATTR.INT, i: value };
  if (value.length > 0 && typeof value[0] === 'string') {
    return { name, type: ATTR.STRINGS, strings: (value as string[]).map((s) => enc.encode(s)) };
  }
  return kind === 'floats'
    ? { name, type: ATTR.FLOATS, floats: value as number[] }
    : { name, type: ATTR.INTS, ints: value as number[] };
}

function node(
  op: string,
  inputs: string[],
  outputs: string[],
  attrs: AttributeProto[] = [],
  domain = '',
): NodeProto {
  return {
    op_type: op,
    name: `${op.toLowerCase()}_${outputs[0]}`,
    input: inputs,
    output: outputs,
    attribute: attrs,
    domain,
  };
}

function io(name: string, elemType: number, dims: (number | string)[]): ValueInfoProto {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

function model(name: string, doc: string, graph: ModelProto['graph'], ml = false): ModelProto {
  return {
    ir_version: 8,
    producer_name: 'thunderpac',
    producer_version: 'build-models/1',
    domain: 'dev.thunderpac.models',
    model_version: 1,
    doc_string: doc,
    graph: { ...graph, name },
    opset_import: ml
      ? [
          { domain: '', version: 17 },
          { domain: 'ai.onnx.ml', version: 3 },
        ]
      : [{ domain: '', version: 17 }],
  };
}

/** He-style scaled weights: keeps activations O(1) through the layers. */
function weights(rng: SeededRandom, n: number, fanIn: number): Float32Array {
  const std = Math.sqrt(2 / fanIn);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal(0, std);
  return out;
}

type SampleTensor = { dtype: 'float32'; shape: number[]; data: number[] };

/** Rows of a dataset as one float32 sample tensor (rounded to float32 so the JSON round-trips). */
function rowsTensor(rows: readonly Float64Array[], shape: number[]): SampleTensor {
  const data: number[] = [];
  for (const r of rows) for (const v of r) data.push(Math.fround(v));
  return { dtype: 'float32', shape, data };
}

function accuracy(correct: number, total: number): string {
  return `held-out accuracy ${correct}/${total} (${((100 * correct) / total).toFixed(1)}%)`;
}

/** Train once per process: build() is called by the generator, the check and the tests. */
function once<T>(f: () => T): () => T {
  let value: T | undefined;
  return () => {
    value ??= f();
    return value;
  };
}

const IRIS_TRAIN = iris('train');
const IRIS_TEST = iris('test');

const MLP_SEED = 0x6d6c70;
const trainedMlp = once(() => {
  const net = trainMlp(IRIS_TRAIN, {
    seed: MLP_SEED,
    hidden: 16,
    classes: 3,
    epochs: 800,
    learningRate: 0.05,
    momentum: 0.9,
    l2: 1e-3,
  });
  const correct = IRIS_TEST.x.filter(
    (x, i) => predictDense(net.layer2, hiddenOf(net.layer1, x)) === IRIS_TEST.y[i],
  ).length;
  return { ...net, correct };
});

export const mlp: ZooModel = {
  name: 'mlp',
  version: '1',
  description:
    "MLP Iris classifier: 4 measurements (cm) -> 16 hidden (ReLU) -> 3 species (softmax), trained on Fisher's Iris data",
  seed: MLP_SEED,
  inputRange: [0, 8],
  build() {
    const { layer1, layer2, correct } = trainedMlp();
    return model('mlp', `${this.description}; ${accuracy(correct, IRIS_TEST.y.length)}`, {
      name: 'mlp',
      initializer: [
        floatTensor('W1', [16, 4], layer1.w),
        floatTensor('b1', [16], layer1.b),
        floatTensor('W2', [3, 16], layer2.w),
        floatTensor('b2', [3], layer2.b),
      ],
      node: [
        node('Gemm', ['x', 'W1', 'b1'], ['h1'], [a('transB', 1)]),
        node('Relu', ['h1'], ['a1']),
        node('Gemm', ['a1', 'W2', 'b2'], ['logits'], [a('transB', 1)]),
        node('Softmax', ['logits'], ['probs'], [a('axis', 1)]),
      ],
      input: [io('x', ONNX_DTYPE.FLOAT, ['N', 4])],
      output: [io('probs', ONNX_DTYPE.FLOAT, ['N', 3])],
    });
  },
  sampleInput() {
    // One held-out flower of each of the first two species.
    return { x: rowsTensor([IRIS_TEST.x[0]!, IRIS_TEST.x[10]!], [2, 4]) };
  },
};

const CNN_SEED = 0x636e6e;
const SHAPES_PER_CLASS = { train: 120, test: 20 };
const trainedCnn = once(() => {
  const rng = new SeededRandom(CNN_SEED);
  const conv1: Conv = { w: weights(rng, 8 * 27, 27), b: rng.floats(8, -0.1, 0.1), inputs: 3, outputs: 8 };
  const conv2: Conv = { w: weights(rng, 16 * 72, 72), b: rng.floats(16, -0.1, 0.1), inputs: 8, outputs: 16 };
  const features = (d: { x: Float64Array[]; y: number[] }) => ({
    x: d.x.map((image) => convFeatures(image, 32, conv1, conv2)),
    y: d.y,
  });
  const train = shapes(CNN_SEED + 10, SHAPES_PER_CLASS.train);
  const test = shapes(CNN_SEED + 20, SHAPES_PER_CLASS.test);
  const head = trainHead(features(train), {
    seed: CNN_SEED + 30,
    classes: SHAPES.length,
    epochs: 10,
    learningRate: 1e-4,
    l2: 0.1,
  });
  const testFeatures = features(test);
  const right = testFeatures.x.map((x, i) => predictDense(head, x) === testFeatures.y[i]);
  const correct = right.filter(Boolean).length;
  // The sample (sample_io.json, the supervisor's probe) is the first held-out image it gets right.
  return { conv1, conv2, head, correct, total: test.y.length, sample: test.x[right.indexOf(true)]! };
});

export const cnn: ZooModel = {
  name: 'cnn',
  version: '1',
  description: `CNN shape classifier on Nx3x32x32: Conv(8,3x3)-ReLU-MaxPool(2)-Conv(16,3x3)-ReLU-MaxPool(2)-Gemm(10)-Softmax; seeded convolution filters, Gemm trained on ${SHAPES_PER_CLASS.train * SHAPES.length} rendered shapes (${SHAPES.join(', ')})`,
  seed: CNN_SEED,
  inputRange: [0, 1],
  build() {
    const { conv1, conv2, head, correct, total } = trainedCnn();
    const pad = [a('kernel_shape', [3, 3]), a('pads', [1, 1, 1, 1]), a('strides', [1, 1])];
    const pool = [a('kernel_shape', [2, 2]), a('strides', [2, 2])];
    return model('cnn', `${this.description}; ${accuracy(correct, total)}`, {
      name: 'cnn',
      initializer: [
        floatTensor('conv1_W', [8, 3, 3, 3], conv1.w),
        floatTensor('conv1_B', [8], conv1.b),
        floatTensor('conv2_W', [16, 8, 3, 3], conv2.w),
        floatTensor('conv2_B', [16], conv2.b),
        floatTensor('fc_W', [10, 1024], head.w),
        floatTensor('fc_B', [10], head.b),
      ],
      node: [
        node('Conv', ['image', 'conv1_W', 'conv1_B'], ['c1'], pad),
        node('Relu', ['c1'], ['r1']),
        node('MaxPool', ['r1'], ['p1'], pool),
        node('Conv', ['p1', 'conv2_W', 'conv2_B'], ['c2'], pad),
        node('Relu', ['c2'], ['r2']),
        node('MaxPool', ['r2'], ['p2'], pool),
        node('Flatten', ['p2'], ['flat'], [a('axis', 1)]),
        node('Gemm', ['flat', 'fc_W', 'fc_B'], ['logits'], [a('transB', 1)]),
        node('Softmax', ['logits'], ['probs'], [a('axis', 1)]),
      ],
      input: [io('image', ONNX_DTYPE.FLOAT, ['N', 3, 32, 32])],
      output: [io('probs', ONNX_DTYPE.FLOAT, ['N', 10])],
    });
  },
  sampleInput() {
    return { image: rowsTensor([trainedCnn().sample], [1, 3, 32, 32]) };
  },
};

const TREES = 5;
const DEPTH = 3;
const FEATURES = 4;
const CLASSES = 3;
const toFloat32 = (d: { x: Float64Array[]; y: number[] }) => ({
  x: d.x.map((r) => Float32Array.from(r)),
  y: d.y,
});
const TRAIN = toFloat32(IRIS_TRAIN);
const TEST = toFloat32(IRIS_TEST);

export const tree: ZooModel = {
  name: 'tree',
  version: '1',
  description: `ai.onnx.ml TreeEnsembleClassifier: random forest of ${TREES} CART trees (depth <= ${DEPTH}), ${FEATURES} features, ${CLASSES} classes, trained on Fisher's Iris data`,
  seed: 0x74726565,
  inputRange: [0, 8],
  build() {
    const forest = trainForest(TRAIN, {
      seed: this.seed,
      trees: TREES,
      depth: DEPTH,
      classes: CLASSES,
      featuresPerSplit: 2,
    });
    const correct = TEST.x.filter((x, i) => predict(forest, x, CLASSES) === TEST.y[i]).length;
    const t: Record<string, number[]> = {
      treeids: [],
      nodeids: [],
      featureids: [],
      values: [],
      trueids: [],
      falseids: [],
      ctree: [],
      cnode: [],
      cid: [],
      cw: [],
    };
    const modes: string[] = [];
    forest.forEach((nodes, tr) => {
      for (const n of nodes) {
        t.treeids!.push(tr);
        t.nodeids!.push(n.id);
        t.featureids!.push(n.kind === 'branch' ? n.feature : 0);
        t.values!.push(n.kind === 'branch' ? n.threshold : 0);
        t.trueids!.push(n.kind === 'branch' ? n.left : 0);
        t.falseids!.push(n.kind === 'branch' ? n.right : 0);
        modes.push(n.kind === 'branch' ? 'BRANCH_LEQ' : 'LEAF');
        if (n.kind === 'leaf') {
          // The leaf's class distribution, averaged over trees: scores sum to ~1 per row.
          leafWeights(n.counts, TREES).forEach((w, c) => {
            t.ctree!.push(tr);
            t.cnode!.push(n.id);
            t.cid!.push(c);
            t.cw!.push(w);
          });
        }
      }
    });
    const doc = `${this.description}; ${accuracy(correct, TEST.y.length)}`;
    return model(
      'tree',
      doc,
      {
        name: 'tree',
        initializer: [],
        node: [
          node(
            'TreeEnsembleClassifier',
            ['features'],
            ['label', 'probabilities'],
            [
              a('nodes_treeids', t.treeids!),
              a('nodes_nodeids', t.nodeids!),
              a('nodes_featureids', t.featureids!),
              a('nodes_modes', modes),
              a('nodes_values', t.values!, 'floats'),
              a('nodes_truenodeids', t.trueids!),
              a('nodes_falsenodeids', t.falseids!),
              a('class_treeids', t.ctree!),
              a('class_nodeids', t.cnode!),
              a('class_ids', t.cid!),
              a('class_weights', t.cw!, 'floats'),
              a('classlabels_int64s', [0, 1, 2]),
              a('post_transform', 'NONE'),
            ],
            'ai.onnx.ml',
          ),
        ],
        input: [io('features', ONNX_DTYPE.FLOAT, ['N', FEATURES])],
        output: [io('label', ONNX_DTYPE.INT64, ['N']), io('probabilities', ONNX_DTYPE.FLOAT, ['N', CLASSES])],
      },
      true,
    );
  },
  sampleInput() {
    return { features: rowsTensor([IRIS_TEST.x[0]!, IRIS_TEST.x[20]!], [2, FEATURES]) };
  },
};

export const ZOO: readonly ZooModel[] = [mlp, cnn, tree];
