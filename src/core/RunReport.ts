/**
 * The RunReport: what a pipeline run did, printed as JSON at the end of every run.
 */
import type { SinkResult, WriteMode } from "./Sink.ts"
import type { Cardinality, RunContext, StageKind } from "./Stage.ts"

/** Counts and time of one stage. */
export interface StageReport {
  readonly name: string
  readonly kind: StageKind
  readonly description: string
  readonly cardinality: Cardinality
  readonly recordsIn: number
  readonly recordsOut: number
  readonly filtered: number
  readonly rejected: number
  /** Records a many-to-one or one-to-many stage took in (combined into its outputs); 0 for one-to-one stages. */
  readonly consumed: number
  readonly warned: number
  readonly batches: number
  /** Time spent in the stage's own code (transforms) or writing (sinks), in milliseconds. */
  readonly busyMs: number
  /** Bytes a source read or a sink wrote, when its connector can tell. */
  readonly bytes?: number
  /** The stages it receives from, when not only the one before it (a stage with two inputs, e.g. an interval join). */
  readonly inputs?: ReadonlyArray<string>
}

/** One row-count check: a stage's records in must equal its records out, filtered and rejected (or the sink's writes). */
export interface ReconciliationCheck {
  readonly stage: string
  readonly expected: number
  readonly actual: number
  readonly ok: boolean
  readonly rule: string
}

/** What a streaming run (an unbounded source) adds to its report. */
export interface StreamingReport {
  /** Segments committed (on-commit sinks; each one made its records visible and acknowledged their positions). */
  readonly segments: number
  /**
   * End-to-end latency of the batches made visible, in milliseconds: from the oldest source timestamp of a batch (e.g.
   * its oldest Kafka message) to the commit (or write, for per-write sinks) that made it visible. Absent when the
   * source has no timestamps.
   */
  readonly latencyMs?: {
    readonly batches: number
    readonly p50: number
    readonly p95: number
    readonly max: number
  }
}

/** The outcome of a run. */
export interface RunReport {
  readonly runId: string
  readonly pipeline: string
  readonly status: "succeeded" | "failed"
  readonly startedAt: string
  readonly finishedAt: string
  readonly durationMs: number
  /** Run attempts made (more than 1 when retryable errors were retried). */
  readonly attempts: number
  readonly records: {
    /** Records the source produced (including those it rejected itself, e.g. undecodable lines). */
    readonly read: number
    /** Records the sink accepted. */
    readonly written: number
    readonly filtered: number
    readonly rejected: number
    readonly warned: number
    /** Rejected records written to the dead-letter sink. */
    readonly deadLettered: number
    /** Rejected records dropped on purpose (the pipeline has no dead-letter sink and allows dropping them). */
    readonly dropped: number
    /**
     * What aggregates, windows and joins did: `in` records they combined, `out` records they emitted. The counts add
     * up: read + combined.out = written + filtered + rejected + combined.in.
     */
    readonly combined: { readonly in: number; readonly out: number }
  }
  /** Records read per second of run time. */
  readonly recordsPerSecond: number
  readonly stages: ReadonlyArray<StageReport>
  readonly sink?: SinkResult & { readonly name: string; readonly mode: WriteMode }
  readonly deadLetters?: SinkResult & { readonly name: string }
  readonly reconciliation: { readonly ok: boolean; readonly checks: ReadonlyArray<ReconciliationCheck> }
  /** Streaming runs only. */
  readonly streaming?: StreamingReport
  readonly error?: {
    readonly tag: string
    readonly stage: string
    readonly message: string
    readonly retryable: boolean
  }
}

/** The stage reports of a run context, in pipeline order. */
export const stageReports = (ctx: RunContext): ReadonlyArray<StageReport> =>
  ctx.stages().map((c) => ({
    name: c.info.name,
    kind: c.info.kind,
    description: c.info.description,
    cardinality: c.info.cardinality,
    recordsIn: c.recordsIn,
    recordsOut: c.recordsOut,
    filtered: c.filtered,
    rejected: c.rejected,
    consumed: c.consumed,
    warned: c.warned,
    batches: c.batches,
    busyMs: Math.round(c.busyMs * 1000) / 1000,
    ...(c.bytes > 0 ? { bytes: c.bytes } : {}),
    ...(c.info.inputs === undefined ? {} : { inputs: c.info.inputs })
  }))

/**
 * Checks row counts: every one-to-one stage accounts for each record it received (out + filtered + rejected = in), every
 * other stage for each record it took in (consumed + filtered + rejected = in), each stage receives what the previous
 * one emitted (a stage with several `inputs`: what they emitted together; a second source starts a chain of its own),
 * the sink accepted what it received, and over the whole run read + combined out = written + filtered + rejected +
 * combined in.
 */
export const reconcile = (
  stages: ReadonlyArray<StageReport>,
  sinkWritten: number | undefined
): ReadonlyArray<ReconciliationCheck> => {
  const checks: Array<ReconciliationCheck> = []
  let previousOut: number | undefined
  const outOf = new Map<string, number>()
  for (const s of stages) {
    if (s.kind === "dead-letters") continue
    if (s.inputs !== undefined) {
      const expected = s.inputs.reduce((sum, name) => sum + (outOf.get(name) ?? 0), 0)
      checks.push({
        stage: s.name,
        rule: `received = output of ${s.inputs.join(" + ")}`,
        expected,
        actual: s.recordsIn,
        ok: expected === s.recordsIn
      })
    } else if (previousOut !== undefined && s.kind !== "source")
      checks.push({
        stage: s.name,
        rule: "received = previous stage's output",
        expected: previousOut,
        actual: s.recordsIn,
        ok: previousOut === s.recordsIn
      })
    if (s.kind !== "sink") {
      const oneToOne = s.cardinality === "one-to-one"
      const accounted = (oneToOne ? s.recordsOut : s.consumed) + s.filtered + s.rejected
      checks.push({
        stage: s.name,
        rule: oneToOne ? "in = out + filtered + rejected" : "in = consumed + filtered + rejected",
        expected: s.recordsIn,
        actual: accounted,
        ok: accounted === s.recordsIn
      })
    }
    if (s.kind === "sink" && sinkWritten !== undefined)
      checks.push({
        stage: s.name,
        rule: "written = received",
        expected: s.recordsIn,
        actual: sinkWritten,
        ok: sinkWritten === s.recordsIn
      })
    previousOut = s.recordsOut
    outOf.set(s.name, s.recordsOut)
  }
  if (sinkWritten !== undefined) {
    const t = totals(stages)
    checks.push({
      stage: "run",
      rule: "read + combined out = written + filtered + rejected + combined in",
      expected: t.read + t.combinedOut,
      actual: sinkWritten + t.filtered + t.rejected + t.combinedIn,
      ok: t.read + t.combinedOut === sinkWritten + t.filtered + t.rejected + t.combinedIn
    })
  }
  return checks
}

/** The run's totals over its source and transform stages. */
export const totals = (
  stages: ReadonlyArray<StageReport>
): {
  readonly read: number
  readonly filtered: number
  readonly rejected: number
  readonly warned: number
  readonly combinedIn: number
  readonly combinedOut: number
} => {
  let read = 0
  let filtered = 0
  let rejected = 0
  let warned = 0
  let combinedIn = 0
  let combinedOut = 0
  for (const s of stages) {
    if (s.kind !== "source" && s.kind !== "transform") continue
    if (s.kind === "source") read += s.recordsIn
    filtered += s.filtered
    rejected += s.rejected
    warned += s.warned
    if (s.kind === "transform" && s.cardinality !== "one-to-one") {
      combinedIn += s.consumed
      combinedOut += s.recordsOut
    }
  }
  return { read, filtered, rejected, warned, combinedIn, combinedOut }
}
