import { LowbitError } from "@lowbit/tensor";

/**
 * Reverse-mode automatic differentiation over Float32Array tensors.
 *
 * A Variable holds a value (row-major f32), its shape and, after `backward`, its gradient. Every op
 * that has an input requiring a gradient records its parents and a backward closure on the result;
 * `backward(loss)` orders the recorded graph topologically (the tape) and runs the closures in
 * reverse, each adding its contribution into the parents' gradients. Arithmetic inside ops runs in
 * JavaScript doubles; only stored values are rounded to f32.
 */
export class Variable {
  readonly value: Float32Array;
  readonly shape: readonly number[];
  /** Gradient of the last `backward` with respect to this value (accumulated across calls). */
  grad: Float32Array | null = null;
  readonly requiresGrad: boolean;
  /** Optional name (parameters: used by checkpoints and optimizer state). */
  name: string | undefined;
  /** @internal Inputs this value was computed from (only when it requires a gradient). */
  readonly parents: readonly Variable[];
  /** @internal Adds this node's gradient contributions into its parents' gradients. */
  backwardFn: ((grad: Float32Array) => void) | null;

  constructor(
    value: Float32Array,
    shape: readonly number[],
    options: {
      requiresGrad?: boolean;
      name?: string;
      parents?: readonly Variable[];
      backward?: ((grad: Float32Array) => void) | null;
    } = {},
  ) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== value.length) {
      throw new LowbitError(
        "E_SHAPE_MISMATCH",
        `Variable${options.name ? ` "${options.name}"` : ""}: shape [${shape.join(", ")}] has ${n} elements, value has ${value.length}`,
      );
    }
    this.value = value;
    this.shape = shape;
    this.requiresGrad = options.requiresGrad ?? false;
    this.name = options.name;
    this.parents = options.parents ?? [];
    this.backwardFn = options.backward ?? null;
  }

  /** A trainable leaf (requires a gradient). */
  static param(value: Float32Array, shape: readonly number[], name?: string): Variable {
    return new Variable(value, shape, { requiresGrad: true, name });
  }

  /** A leaf that never receives a gradient (inputs, targets). */
  static constant(value: Float32Array, shape: readonly number[]): Variable {
    return new Variable(value, shape);
  }

  get size(): number {
    return this.value.length;
  }

  /** Size of the last dimension (the "columns" of a row-major matrix view). */
  get cols(): number {
    return this.shape.length === 0 ? 1 : this.shape[this.shape.length - 1]!;
  }

  /** Number of rows of the [rows, cols] matrix view (product of all but the last dimension). */
  get rows(): number {
    return this.cols === 0 ? 0 : this.value.length / this.cols;
  }

  /** The gradient buffer, allocated (zeroed) on first use. */
  gradBuffer(): Float32Array {
    let g = this.grad;
    if (!g) {
      g = new Float32Array(this.value.length);
      this.grad = g;
    }
    return g;
  }

  zeroGrad(): void {
    this.grad = null;
  }

  /** The scalar value of a one-element variable. */
  item(): number {
    if (this.value.length !== 1) {
      throw new LowbitError("E_SHAPE_MISMATCH", `item() needs a one-element variable, got shape [${this.shape.join(", ")}]`);
    }
    return this.value[0]!;
  }
}

let gradEnabled = true;

/** Runs `fn` without recording the graph (evaluation, observers, conversion). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/**
 * The result of an op: records `backward` only when recording is on and some parent requires a
 * gradient, so graphs over constants cost nothing.
 */
export function result(
  value: Float32Array,
  shape: readonly number[],
  parents: readonly Variable[],
  backward: (grad: Float32Array) => void,
): Variable {
  const needs = gradEnabled && parents.some((p) => p.requiresGrad);
  if (!needs) return new Variable(value, shape);
  return new Variable(value, shape, { requiresGrad: true, parents, backward });
}

/**
 * Back-propagates from `root` (a scalar loss, or any variable with an explicit `seed` gradient).
 * Gradients accumulate into every leaf that requires one; intermediate gradients are released
 * after use unless `retainGraph` is set.
 */
export function backward(root: Variable, seed?: Float32Array, options: { retainGraph?: boolean } = {}): void {
  if (!root.requiresGrad) {
    throw new LowbitError(
      "E_INVALID_ARGUMENT",
      "backward: the root does not depend on any variable that requires a gradient (was it computed under noGrad?)",
    );
  }
  if (!seed && root.size !== 1) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `backward: a seed gradient is needed for a non-scalar root of shape [${root.shape.join(", ")}]`,
    );
  }
  if (seed && seed.length !== root.size) {
    throw new LowbitError("E_SHAPE_MISMATCH", `backward: seed has ${seed.length} elements, root has ${root.size}`);
  }
  const order = topologicalOrder(root);
  const g = root.gradBuffer();
  if (seed) for (let i = 0; i < g.length; i++) g[i]! += seed[i]!;
  else g[0]! += 1;
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i]!;
    const fn = node.backwardFn;
    if (!fn) continue;
    const grad = node.grad;
    if (grad) fn(grad);
    if (!options.retainGraph) node.grad = null;
  }
}

/** Nodes reachable from root that require a gradient, parents before children (iterative DFS). */
function topologicalOrder(root: Variable): Variable[] {
  const order: Variable[] = [];
  const visited = new Set<Variable>();
  const stack: Array<{ node: Variable; next: number }> = [{ node: root, next: 0 }];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const parents = top.node.parents;
    if (top.next < parents.length) {
      const p = parents[top.next++]!;
      if (p.requiresGrad && !visited.has(p)) {
        visited.add(p);
        stack.push({ node: p, next: 0 });
      }
    } else {
      order.push(top.node);
      stack.pop();
    }
  }
  return order;
}

/** Throws E_SHAPE_MISMATCH naming `op` unless the two variables have equal shapes. */
export function checkSameShape(op: string, a: Variable, b: Variable): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `${op}: shapes [${a.shape.join(", ")}] and [${b.shape.join(", ")}] differ`,
    );
  }
}
