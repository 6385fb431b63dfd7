/**
 * The metrics of a run, as Effect `Metric` values: what an OTLP exporter sends and a Prometheus scrape reads.
 *
 * The runtime keeps them for every stage, so no connector or transform counts for itself:
 * - a stage's counts (records in, out, filtered, rejected, consumed, warned, batches, bytes, records committed) and its
 *   state gauges (open windows, state entries) are **observable** metrics: their state is the stage's counter, read when
 *   an exporter or a scrape asks. The RunReport is built from the very same counters, so the two never disagree, and
 *   counting costs the hot path nothing more than it did;
 * - durations (a stage's batches, a sink's writes and commits), end-to-end latency, rejections by reason and rule, and
 *   retries by error are recorded as they happen.
 *
 * Every series carries `pipeline` and `run_id`; a stage's series also `stage`, `stage_kind` and, for sources and
 * sinks, `connector`. Durations are in seconds. One metric is a connector's own: the Kafka source sets
 * `etl_kafka_consumer_lag` (listed in the {@link catalog} too). A registry keeps the series of its last
 * {@link finishedRunsKept} ended runs; older runs' series, the connectors' included, are removed by run id.
 */
import * as Context from "effect/Context"
import * as Metric from "effect/Metric"
import type * as DeadLetter from "../core/DeadLetter.ts"
import type { PipelineError } from "../core/Errors.ts"
import type { StageCounter } from "../core/Stage.ts"

/** A metric's name, what it counts or measures, its type and its attributes beyond `pipeline` and `run_id`. */
export interface MetricInfo {
  readonly name: string
  readonly type: "counter" | "gauge" | "histogram"
  readonly description: string
  readonly attributes: ReadonlyArray<string>
}

const stageAttributes = ["stage", "stage_kind", "connector"]

/** The counts every stage has, observed from its counter. */
const stageCounts = [
  [
    "etl_records_in_total",
    "Records a stage received (a source: records it read, including those it rejected)",
    "recordsIn"
  ],
  ["etl_records_out_total", "Records a stage passed on (a sink: records it accepted for writing)", "recordsOut"],
  [
    "etl_records_filtered_total",
    "Records a stage dropped by a rule the pipeline states (filter, where, deduplicate)",
    "filtered"
  ],
  ["etl_records_rejected_total", "Records a stage rejected (invalid, failed a rule, undecodable, late)", "rejected"],
  ["etl_records_consumed_total", "Records an aggregate, window or join combined into its outputs", "consumed"],
  ["etl_records_warned_total", "Records a stage let through with a warning", "warned"],
  ["etl_batches_total", "Batches a stage handled", "batches"],
  ["etl_bytes_total", "Bytes a source read or a sink wrote, where the connector can tell", "bytes"],
  ["etl_records_committed_total", "Records a sink made durable and visible, as its commits report them", "committed"]
] as const satisfies ReadonlyArray<readonly [string, string, keyof StageCounter]>

const stageGauges = [
  ["etl_windows_open", "Event-time windows a stage holds open", "openWindows"],
  ["etl_state_entries", "Entries a stateful stage holds (groups, lookup keys, buffered records)", "stateEntries"]
] as const satisfies ReadonlyArray<readonly [string, string, keyof StageCounter]>

/** Histogram boundaries of durations, in seconds: 0.1 ms to about 100 s. */
const durationBoundaries = Metric.exponentialBoundaries({ start: 0.0001, factor: 2, count: 21 })

/**
 * Histogram boundaries of end-to-end latency, in seconds: 1 ms to about 3 hours, 15% apart, so that the p50 and p95
 * read from the histogram are within a few percent.
 */
const latencyBoundaries = Metric.exponentialBoundaries({ start: 0.001, factor: 1.15, count: 115 })

/** Every metric the runtime keeps (and the Kafka connector's lag gauge), for documentation and tests. */
export const catalog: ReadonlyArray<MetricInfo> = [
  ...stageCounts.map(([name, description]) => ({
    name,
    type: "counter" as const,
    description,
    attributes: stageAttributes
  })),
  ...stageGauges.map(([name, description]) => ({
    name,
    type: "gauge" as const,
    description,
    attributes: stageAttributes
  })),
  {
    name: "etl_rejections_total",
    type: "counter",
    description: "Rejected records by the stage that rejected them, the reason and, for rules, the rule's name",
    attributes: ["stage", "reason", "rule"]
  },
  {
    name: "etl_records_dropped_total",
    type: "counter",
    description: "Rejected records dropped on purpose (no dead-letter sink, and the pipeline allows dropping them)",
    attributes: []
  },
  {
    name: "etl_batch_duration_seconds",
    type: "histogram",
    description: "Time a transform spent on one batch",
    attributes: stageAttributes
  },
  {
    name: "etl_sink_write_duration_seconds",
    type: "histogram",
    description: "Time a sink (or the dead-letter sink) spent writing one batch",
    attributes: stageAttributes
  },
  {
    name: "etl_sink_commit_duration_seconds",
    type: "histogram",
    description: "Time a sink (or the dead-letter sink) spent on one commit",
    attributes: stageAttributes
  },
  {
    name: "etl_end_to_end_latency_seconds",
    type: "histogram",
    description: "Streaming runs: from a batch's oldest source timestamp to the commit (or write) that made it visible",
    attributes: []
  },
  {
    name: "etl_retries_total",
    type: "counter",
    description:
      "Attempts that failed with a retryable error and were retried, by error, its reason (the connector's classification: ConnectionLost, Timeout, ...) and stage",
    attributes: ["error_type", "reason", "stage"]
  },
  {
    name: "etl_kafka_consumer_lag",
    type: "gauge",
    description: "Kafka sources: messages between the partition's high watermark and the next offset to read",
    attributes: ["topic", "partition"]
  }
]

const noop = () => {}

/** The connector's classification of an error (`reason._tag` of its tagged errors), or `unknown`. */
const reasonOf = (cause: unknown): string => {
  const reason =
    typeof cause === "object" && cause !== null ? (cause as { readonly reason?: unknown }).reason : undefined
  const tag = typeof reason === "object" && reason !== null ? (reason as { readonly _tag?: unknown })._tag : undefined
  return typeof tag === "string" ? tag : "unknown"
}

/** The attributes every series of a run carries. */
export interface RunAttributes {
  readonly pipeline: string
  readonly run_id: string
}

/** The metrics of one run, bound to the context whose metric registry holds them. */
export interface RunMetrics {
  /** The attributes of the run's series. */
  readonly attributes: RunAttributes
  /** Registers a stage's counter as the state of its metrics and gives it its duration histogram. */
  readonly stage: (counter: StageCounter) => void
  /** Registers the count of rejected records the run dropped on purpose (read from `dropped`). */
  readonly dropped: (dropped: () => number) => void
  /** Counts a batch's dead letters by the stage that rejected them, the reason and the rule. */
  readonly rejections: (deadLetters: ReadonlyArray<DeadLetter.DeadLetter>) => void
  /** Records the duration of a sink's commit, in milliseconds. */
  readonly commit: (counter: StageCounter, ms: number) => void
  /** Records the end-to-end latency of a batch made visible, in milliseconds. */
  readonly latency: (ms: number) => void
  /** The end-to-end latency histogram's state. */
  readonly latencyState: () => Metric.HistogramState
  /** Counts a retried attempt. */
  readonly retry: (error: PipelineError) => void
  /**
   * Ends the run's metrics: they stay readable (a scrape or an export after the run still sees its final values) until
   * {@link finishedRunsKept} later runs have ended in the same registry, then its series are removed, so that a
   * process running pipeline after pipeline does not keep the series of every run it ever ran.
   */
  readonly finish: () => void
}

/** How many ended runs keep their series in a metric registry. */
export const finishedRunsKept = 10

/** The removals of the ended runs' series, oldest first, per metric registry. */
const ended = new WeakMap<object, Array<() => void>>()

const seriesAttributes = (run: RunAttributes, counter: StageCounter): Record<string, string> => ({
  ...run,
  stage: counter.info.name,
  stage_kind: counter.info.kind,
  ...(counter.info.connector === undefined ? {} : { connector: counter.info.connector })
})

/** The metrics of the run `attributes` names, in the metric registry of `context`. */
export const make = (attributes: RunAttributes, context: Context.Context<never>): RunMetrics => {
  const latency = Metric.histogram("etl_end_to_end_latency_seconds", {
    description: catalog.find((m) => m.name === "etl_end_to_end_latency_seconds")!.description,
    boundaries: latencyBoundaries,
    attributes: { ...attributes, unit: "s" }
  })
  const commits = new Map<StageCounter, Metric.Histogram<number>>()
  const rejections = new Map<string, Metric.Counter<number>>()
  const describe = (name: string) => catalog.find((m) => m.name === name)!.description
  return {
    attributes,
    stage: (counter) => {
      const series = seriesAttributes(attributes, counter)
      for (const [name, description, field] of stageCounts)
        Metric.registerUnsafe(Metric.counter(name, { description, attributes: series, incremental: true }), context, {
          get: () => ({ count: counter[field], incremental: true }),
          update: noop,
          modify: noop
        })
      for (const [name, description, field] of stageGauges)
        Metric.registerUnsafe(Metric.gauge(name, { description, attributes: series }), context, {
          get: () => ({ value: counter[field] }),
          update: noop,
          modify: noop
        })
      const sink = counter.info.kind === "sink" || counter.info.kind === "dead-letters"
      const name = sink ? "etl_sink_write_duration_seconds" : "etl_batch_duration_seconds"
      const durations = Metric.histogram(name, {
        description: describe(name),
        boundaries: durationBoundaries,
        attributes: { ...series, unit: "s" }
      })

      counter.timed = (ms) => durations.updateUnsafe(ms / 1000, context)
      if (sink)
        commits.set(
          counter,

          Metric.histogram("etl_sink_commit_duration_seconds", {
            description: describe("etl_sink_commit_duration_seconds"),
            boundaries: durationBoundaries,
            attributes: { ...series, unit: "s" }
          })
        )
    },
    dropped: (dropped) =>
      Metric.registerUnsafe(
        Metric.counter("etl_records_dropped_total", {
          description: describe("etl_records_dropped_total"),
          attributes: { ...attributes },
          incremental: true
        }),
        context,
        { get: () => ({ count: dropped(), incremental: true }), update: noop, modify: noop }
      ),
    rejections: (deadLetters) => {
      for (let i = 0; i < deadLetters.length; i++) {
        const { stage, reason } = deadLetters[i]!
        const key = `${stage}\u0000${reason}`
        let counter = rejections.get(key)
        if (counter === undefined) {
          const rule = reason.startsWith("rule:") ? reason.slice("rule:".length) : ""
          counter = Metric.counter("etl_rejections_total", {
            description: describe("etl_rejections_total"),
            attributes: { ...attributes, stage, reason: rule === "" ? reason : "rule", rule },
            incremental: true
          })

          rejections.set(key, counter)
        }
        counter.updateUnsafe(1, context)
      }
    },
    commit: (counter, ms) => commits.get(counter)?.updateUnsafe(ms / 1000, context),
    latency: (ms) => latency.updateUnsafe(ms / 1000, context),
    latencyState: () => latency.valueUnsafe(context),
    retry: (error) =>
      Metric.counter("etl_retries_total", {
        description: describe("etl_retries_total"),
        attributes: { ...attributes, error_type: error._tag, reason: reasonOf(error.cause), stage: error.stage },
        incremental: true
      }).updateUnsafe(1, context),
    finish: () => {
      const registry = Context.get(context, Metric.MetricRegistry)
      let queue = ended.get(registry)
      if (queue === undefined) {
        queue = []
        ended.set(registry, queue)
      }
      // Every series of the run, the connectors' own (Kafka lag) too: they carry its run id.
      queue.push(() => {
        for (const [key, metadata] of registry)
          if ((metadata.attributes as Record<string, string> | undefined)?.run_id === attributes.run_id)
            registry.delete(key)
      })
      while (queue.length > finishedRunsKept) queue.shift()!()
    }
  }
}

/**
 * The value at quantile `q` (0..1) of a histogram's observations, interpolated within its bucket and kept within the
 * smallest and largest observation; 0 for an empty histogram.
 */
export const quantile = (state: Metric.HistogramState, q: number): number => {
  if (state.count === 0) return 0
  const rank = q * state.count
  let lower = 0
  let below = 0
  for (const [boundary, cumulative] of state.buckets) {
    if (cumulative >= rank && cumulative > below) {
      const upper = Number.isFinite(boundary) ? boundary : state.max
      const value = lower + ((upper - lower) * (rank - below)) / (cumulative - below)
      return Math.min(state.max, Math.max(state.min, value))
    }
    lower = Number.isFinite(boundary) ? boundary : lower
    below = cumulative
  }
  return state.max
}
