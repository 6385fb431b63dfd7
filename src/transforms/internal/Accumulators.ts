/**
 * The running state of each aggregate function, one small object per group and function, updated by plain code.
 *
 * NULL semantics follow SQL: `count()` counts rows, every other function ignores NULL (`null` or `undefined`) values,
 * and a function that saw no value returns `null` (except counts, which return 0). Sums of `BigDecimal` values are
 * exact (scaled bigint arithmetic); sums of `number`s are IEEE doubles added in arrival order. Every accumulator can
 * merge another of its kind, which session windows need when a record bridges two sessions.
 *
 * Percentiles come from a DDSketch (`@datadog/sketches-js`): for the value `x` of rank `⌊q·(n−1)⌋` (0-based) among
 * the group's `n` non-null values in ascending order, the estimate `e` satisfies `|e − x| ≤ α·|x|`, where `α` is the
 * relative accuracy (default 0.01). The estimate is clamped to the exact minimum and maximum.
 */
import { createRequire } from "node:module"
import type * as Sketches from "@datadog/sketches-js"
import type { DDSketch } from "@datadog/sketches-js"
import * as BigDecimal from "effect/BigDecimal"
import { decode, encode, type Json } from "./StateCodec.ts"
import { compare, isNullish, keyOf } from "./Values.ts"

// The sketch library is loaded by the first percentile, not with this module: most aggregates have none. It is
// CommonJS, which `require` loads synchronously.
const requireLibrary = createRequire(import.meta.url)
let sketches: typeof Sketches | undefined
const sketchLibrary = (): typeof Sketches => (sketches ??= requireLibrary("@datadog/sketches-js") as typeof Sketches)

/** The aggregate functions. */
export type AggKind = "count" | "countDistinct" | "sum" | "avg" | "min" | "max" | "first" | "last" | "percentile"

/** What an aggregate computes: a function, the field it reads (none for `count()`), and its parameters. */
export interface AggSpec {
  readonly kind: AggKind
  readonly field: string | undefined
  /** For `percentile`: the quantile in [0, 1]. */
  readonly quantile?: number | undefined
  /** For `percentile`: the sketch's relative accuracy α in (0, 1). */
  readonly relativeAccuracy?: number | undefined
}

/** The running state of one aggregate function over one group. */
export interface Accumulator {
  /** Adds one value; `seq` is the record's arrival number (for `first` and `last`). */
  add(value: unknown, seq: number): void
  /** Adds everything another accumulator of the same kind has seen. */
  merge(other: Accumulator): void
  result(): unknown
  /** What it has seen, as JSON (for checkpoints and for merging partial states of parts). */
  save(): Json
  /** Takes back what `save` gave, into a fresh accumulator of the same spec. */
  load(state: Json): void
}

/** The default relative accuracy of percentile sketches. */
export const DEFAULT_RELATIVE_ACCURACY = 0.01

const isNumeric = (value: unknown): boolean => typeof value === "number" || BigDecimal.isBigDecimal(value)

const isOrderable = (value: unknown): boolean => {
  switch (typeof value) {
    case "number":
    case "string":
    case "boolean":
    case "bigint":
      return true
  }
  return value instanceof Date || BigDecimal.isBigDecimal(value)
}

/** What a function expects of its field's values, when `value` is not acceptable; `undefined` when it is. */
export const expected = (kind: AggKind, value: unknown): string | undefined => {
  if (isNullish(value)) return undefined
  switch (kind) {
    case "sum":
    case "avg":
      return isNumeric(value) ? undefined : "a number or a decimal"
    case "percentile":
      return typeof value === "number" && Number.isFinite(value) ? undefined : "a finite number"
    case "min":
    case "max":
      return isOrderable(value) ? undefined : "a number, decimal, string, boolean or timestamp"
    default:
      return undefined
  }
}

/** True when the function's accepted values never need checking. */
export const acceptsAnything = (kind: AggKind): boolean =>
  kind === "count" || kind === "countDistinct" || kind === "first" || kind === "last"

class CountRows implements Accumulator {
  n = 0
  add(): void {
    this.n++
  }
  merge(other: Accumulator): void {
    this.n += (other as CountRows).n
  }
  result(): unknown {
    return this.n
  }
  save(): Json {
    return this.n
  }
  load(state: Json): void {
    this.n = state as number
  }
}

class CountValues implements Accumulator {
  n = 0
  add(value: unknown): void {
    if (!isNullish(value)) this.n++
  }
  merge(other: Accumulator): void {
    this.n += (other as CountValues).n
  }
  result(): unknown {
    return this.n
  }
  save(): Json {
    return this.n
  }
  load(state: Json): void {
    this.n = state as number
  }
}

class CountDistinct implements Accumulator {
  seen = new Set<unknown>()
  add(value: unknown): void {
    if (!isNullish(value)) this.seen.add(keyOf(value))
  }
  merge(other: Accumulator): void {
    for (const key of (other as CountDistinct).seen) this.seen.add(key)
  }
  result(): unknown {
    return this.seen.size
  }
  save(): Json {
    return Array.from(this.seen, encode)
  }
  load(state: Json): void {
    for (const key of state as ReadonlyArray<Json>) this.seen.add(decode(key))
  }
}

const powers: Array<bigint> = [1n]
const pow10 = (n: number): bigint => {
  while (powers.length <= n) powers.push(powers[powers.length - 1]! * 10n)
  return powers[n]!
}

/** Unscaled decimal values of at most this magnitude are added as doubles first (exact up to 2^53). */
const SMALL = 2 ** 52
const SMALL_BIG = 2n ** 52n

/**
 * A sum of doubles and an exact sum of decimals, kept apart so that decimals stay exact. The decimals' sum is the
 * scaled bigint `unscaled + small` at `scale`: values of the current scale that are small enough (most of them) are
 * added to the double `small`, which stays an exact integer (|small| ≤ 2^52), so that adding one allocates nothing;
 * it spills into `unscaled` before it could grow past that, and before anything reads the sum.
 */
class Sum implements Accumulator {
  float = 0
  floats = 0
  unscaled = 0n
  small = 0
  scale = 0
  decimals = 0

  add(value: unknown): void {
    if (typeof value === "number") {
      this.float += value
      this.floats++
    } else if (value !== null && value !== undefined) this.addDecimal(value as BigDecimal.BigDecimal)
  }

  addDecimal(d: BigDecimal.BigDecimal): void {
    this.decimals++
    const v = d.value
    if (d.scale === this.scale && v <= SMALL_BIG && v >= -SMALL_BIG) {
      // Both terms are at most 2^52 in magnitude: the double sum is exact.
      const next = this.small + Number(v)
      if (next <= SMALL && next >= -SMALL) this.small = next
      else {
        this.unscaled += BigInt(next)
        this.small = 0
      }
      return
    }
    this.spill()
    if (d.scale === this.scale) this.unscaled += v
    else if (d.scale < this.scale) this.unscaled += v * pow10(this.scale - d.scale)
    else {
      this.unscaled = this.unscaled * pow10(d.scale - this.scale) + v
      this.scale = d.scale
    }
  }

  /** Moves `small` into `unscaled`. */
  spill(): void {
    if (this.small !== 0) {
      this.unscaled += BigInt(this.small)
      this.small = 0
    }
  }

  merge(other: Accumulator): void {
    const o = other as Sum
    this.float += o.float
    this.floats += o.floats
    if (o.decimals > 0) {
      o.spill()
      this.addDecimal(BigDecimal.make(o.unscaled, o.scale))
      this.decimals += o.decimals - 1
    }
  }

  count(): number {
    return this.floats + this.decimals
  }

  save(): Json {
    this.spill()
    return [encode(this.float), this.floats, this.unscaled.toString(), this.scale, this.decimals]
  }

  load(state: Json): void {
    const [float, floats, unscaled, scale, decimals] = state as [Json, number, string, number, number]
    this.float = decode(float) as number
    this.floats = floats
    this.unscaled = BigInt(unscaled)
    this.small = 0
    this.scale = scale
    this.decimals = decimals
  }

  result(): unknown {
    if (this.decimals === 0) return this.floats === 0 ? null : this.float
    this.spill()
    const exact = BigDecimal.make(this.unscaled, this.scale)
    if (this.floats === 0) return exact
    const asDecimal = BigDecimal.fromNumber(this.float)
    return asDecimal._tag === "Some"
      ? BigDecimal.sum(exact, asDecimal.value)
      : BigDecimal.toNumberUnsafe(exact) + this.float
  }
}

class Avg implements Accumulator {
  readonly sum = new Sum()
  add(value: unknown): void {
    this.sum.add(value)
  }
  merge(other: Accumulator): void {
    this.sum.merge((other as Avg).sum)
  }
  result(): unknown {
    const n = this.sum.count()
    if (n === 0) return null
    const total = this.sum.result()
    return (typeof total === "number" ? total : BigDecimal.toNumberUnsafe(total as BigDecimal.BigDecimal)) / n
  }
  save(): Json {
    return this.sum.save()
  }
  load(state: Json): void {
    this.sum.load(state)
  }
}

class Extreme implements Accumulator {
  best: unknown = undefined
  readonly sign: 1 | -1
  constructor(sign: 1 | -1) {
    this.sign = sign
  }
  add(value: unknown): void {
    if (isNullish(value)) return
    if (this.best === undefined || compare(value, this.best) * this.sign > 0) this.best = value
  }
  merge(other: Accumulator): void {
    this.add((other as Extreme).best)
  }
  result(): unknown {
    return this.best === undefined ? null : this.best
  }
  save(): Json {
    return this.best === undefined ? [] : [encode(this.best)]
  }
  load(state: Json): void {
    const saved = state as ReadonlyArray<Json>
    this.best = saved.length === 0 ? undefined : decode(saved[0])
  }
}

class Positional implements Accumulator {
  value: unknown = null
  seq: number
  readonly first: boolean
  constructor(first: boolean) {
    this.first = first
    this.seq = first ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY
  }
  add(value: unknown, seq: number): void {
    if (isNullish(value)) return
    if (this.first ? seq < this.seq : seq > this.seq) {
      this.value = value
      this.seq = seq
    }
  }
  merge(other: Accumulator): void {
    const o = other as Positional
    if (Number.isFinite(o.seq)) this.add(o.value, o.seq)
  }
  result(): unknown {
    return this.value
  }
  save(): Json {
    return Number.isFinite(this.seq) ? [encode(this.value), this.seq] : []
  }
  load(state: Json): void {
    const saved = state as ReadonlyArray<Json>
    if (saved.length === 2) {
      this.value = decode(saved[0])
      this.seq = saved[1] as number
    }
  }
}

/**
 * Merges sketch `from` into `into`. `DDSketch.merge` of @datadog/sketches-js 2.1.1 forgets the store of negative
 * values, so the stores are merged here one by one.
 */
const mergeSketch = (into: DDSketch, from: DDSketch): void => {
  if (from.count === 0) return
  if (into.count === 0) {
    into._copy(from)
    return
  }
  into.store.merge(from.store)
  into.negativeStore.merge(from.negativeStore)
  into.zeroCount += from.zeroCount
  into.count += from.count
  into.sum += from.sum
  if (from.min < into.min) into.min = from.min
  if (from.max > into.max) into.max = from.max
}

class Percentile implements Accumulator {
  readonly sketch: DDSketch
  readonly quantile: number
  constructor(quantile: number, relativeAccuracy: number) {
    this.quantile = quantile
    this.sketch = new (sketchLibrary().DDSketch)({ relativeAccuracy })
  }
  add(value: unknown): void {
    if (typeof value === "number") this.sketch.accept(value)
  }
  merge(other: Accumulator): void {
    mergeSketch(this.sketch, (other as Percentile).sketch)
  }
  result(): unknown {
    const s = this.sketch
    if (s.count === 0) return null
    const estimate = s.getValueAtQuantile(this.quantile)
    return Math.min(Math.max(estimate, s.min), s.max)
  }
  save(): Json {
    const s = this.sketch
    // The protobuf form keeps the bins; count, sum, min and max travel beside it.
    return {
      bins: Buffer.from(s.toProto()).toString("base64"),
      count: s.count,
      zero: s.zeroCount,
      sum: encode(s.sum),
      min: encode(s.min),
      max: encode(s.max)
    }
  }
  load(state: Json): void {
    const saved = state as { bins: string; count: number; zero: number; sum: Json; min: Json; max: Json }
    if (saved.count === 0) return
    const restored = sketchLibrary().DDSketch.fromProto(new Uint8Array(Buffer.from(saved.bins, "base64")))
    this.sketch._copy(restored)
    this.sketch.count = saved.count
    this.sketch.zeroCount = saved.zero
    this.sketch.sum = decode(saved.sum) as number
    this.sketch.min = decode(saved.min) as number
    this.sketch.max = decode(saved.max) as number
  }
}

/** A function creating fresh accumulators for one aggregate spec. */
export const factory = (spec: AggSpec): (() => Accumulator) => {
  switch (spec.kind) {
    case "count":
      return spec.field === undefined ? () => new CountRows() : () => new CountValues()
    case "countDistinct":
      return () => new CountDistinct()
    case "sum":
      return () => new Sum()
    case "avg":
      return () => new Avg()
    case "min":
      return () => new Extreme(-1)
    case "max":
      return () => new Extreme(1)
    case "first":
      return () => new Positional(true)
    case "last":
      return () => new Positional(false)
    case "percentile": {
      const q = spec.quantile ?? 0.5
      const alpha = spec.relativeAccuracy ?? DEFAULT_RELATIVE_ACCURACY
      return () => new Percentile(q, alpha)
    }
  }
}

/** A problem with a spec's parameters (a quantile outside [0, 1], ...), for a person; `undefined` when it is fine. */
export const checkSpec = (spec: AggSpec): string | undefined => {
  if (spec.kind !== "count" && spec.field === undefined) return `${spec.kind} needs a field`
  if (spec.kind === "percentile") {
    const q = spec.quantile ?? 0.5
    if (!(q >= 0 && q <= 1)) return `percentile: the quantile must be between 0 and 1, got ${q}`
    const a = spec.relativeAccuracy ?? DEFAULT_RELATIVE_ACCURACY
    if (!(a > 0 && a < 1)) return `percentile: the relative accuracy must be between 0 and 1 (exclusive), got ${a}`
  }
  return undefined
}

/** How a spec reads in descriptions: `sum(amount)`, `count()`, `percentile(latency, 0.95)`. */
export const describeSpec = (spec: AggSpec): string => {
  const name = spec.kind === "countDistinct" ? "count_distinct" : spec.kind
  if (spec.kind === "percentile") return `percentile(${spec.field}, ${spec.quantile ?? 0.5})`
  return `${name}(${spec.field ?? ""})`
}
