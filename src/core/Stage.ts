/**
 * Stages and their live counters.
 *
 * Every part of a pipeline (the source, each transform, the sink, the dead-letter sink) is a stage with a name and a
 * counter. Counters are plain mutable numbers updated once per batch by plain code, read by the runtime for progress,
 * logs and the final RunReport, and registered by it as the state of the run's metrics (`runtime/Metrics.ts`).
 */
import type * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import type { Batch } from "./Batch.ts"
import type * as Checkpoint from "./Checkpoint.ts"
import type { PipelineError } from "./Errors.ts"
import type * as PassThrough from "./PassThrough.ts"

/** What part of a pipeline a stage is. */
export type StageKind = "source" | "transform" | "sink" | "dead-letters"

/**
 * How a stage relates the records it receives to the records it emits, for row-count reconciliation.
 * - `one-to-one`: every record in is emitted, filtered or rejected (map, filter, validate, ...): in = out + filtered + rejected.
 * - `many-to-one`: records are combined (aggregate): in = consumed + filtered + rejected, and the outputs are new records.
 * - `one-to-many`: a record may produce several (join with several matches, sliding windows): in = consumed + filtered +
 *   rejected, and each consumed record gave one output or more.
 */
export type Cardinality = "one-to-one" | "many-to-one" | "one-to-many"

/**
 * A dataset that a source reads or a sink writes, named the way OpenLineage names datasets: `namespace` says where it
 * lives (`postgres://127.0.0.1:5432`, `mysql://host:3306`, `kafka://broker:9092`, `s3://bucket`, `file://host`),
 * `name` what it is there (`db.schema.table`, `db.table`, the topic, the key prefix, the path).
 */
export interface Dataset {
  readonly namespace: string
  readonly name: string
  /** The fields of its records and their types, when known (OpenLineage's schema facet). */
  readonly fields?: ReadonlyArray<{ readonly name: string; readonly type: string }> | undefined
}

/**
 * Attributes of a connector for traces and metrics, named by OpenTelemetry's semantic conventions where one exists:
 * `db.system.name`, `db.namespace`, `db.collection.name`, `messaging.system`, `messaging.destination.name`,
 * `server.address`, `server.port`, `aws.s3.bucket`, `file.path`.
 */
export type Attributes = Readonly<Record<string, string | number | boolean>>

/** What a source knows of the size of its input before it reads it, for a progress percentage and an ETA. */
export interface InputSize {
  /** Records to read (exact or estimated, e.g. a table's row estimate, Kafka end offsets minus start offsets). */
  readonly records?: number | undefined
  /** Bytes to read (files, objects); compared with the `bytes` the source's batches carry. */
  readonly bytes?: number | undefined
  /** True when `records`/`bytes` is an estimate. */
  readonly estimated?: boolean | undefined
}

/** A static description of a stage, known before the pipeline runs (what `validate` prints). */
export interface StageInfo {
  readonly name: string
  readonly kind: StageKind
  /** One line for a person: `filter amount > 100`, `file source examples/data/*.jsonl (jsonl)`. */
  readonly description: string
  readonly cardinality: Cardinality
  /** `true` for a stage that keeps state across batches (windows, aggregates, joins): it is checkpointed. */
  readonly stateful?: boolean | undefined
  /**
   * `true` for a stage that combines records into states that merge (an aggregate): a split run's parts each compute
   * a partial state, and its finish merges them (see `Split.merge`).
   */
  readonly mergeable?: boolean | undefined
  /**
   * `true` for a stage whose output depends on the whole input although it keeps no state across batches in a stream
   * (a right or full join emits the joined side's unmatched rows at the end): a split run runs it in the finish.
   */
  readonly needsWholeInput?: boolean | undefined
  /**
   * `true` for a stage that runs as one operator with the stage before it (an aggregate right after a window): a split
   * run that cuts at that stage runs both where this one runs, and merges this one's partial states when it is
   * `mergeable`.
   */
  readonly fused?: boolean | undefined
  /**
   * The stages whose output this stage receives, when it is not just the stage before it: a stage with two inputs
   * (an interval join) names the last stage of each. Row counts are reconciled against their outputs added up.
   */
  readonly inputs?: ReadonlyArray<string> | undefined
  /** The connector type of a source or sink stage (`file`, `postgres`, `kafka`, ...). */
  readonly connector?: string | undefined
  /** The dataset a source reads or a sink writes, when the connector names one. */
  readonly dataset?: Dataset | undefined
  /** The connector's attributes for spans and metrics. */
  readonly attributes?: Attributes | undefined
}

/** At most this many warnings of one stage are logged one by one in a run; the rest are only counted. */
export const MAX_LOGGED_WARNINGS = 20

/** The live counters of one stage during one run. */
export class StageCounter {
  readonly info: StageInfo
  recordsIn = 0
  recordsOut = 0
  filtered = 0
  rejected = 0
  /** Records taken in by a many-to-one or one-to-many stage (neither filtered nor rejected); its outputs are counted apart. */
  consumed = 0
  warned = 0
  batches = 0
  /** Time spent inside the stage's own code, in milliseconds. */
  busyMs = 0
  /** Bytes read (a source, from its batches' `bytes`) or written (a sink, as its commits report them). */
  bytes = 0
  /** Windows open now (event-time window stages). */
  openWindows = 0
  /** Entries held in the stage's state now (groups of an aggregate, keys of a join's lookup, records of open windows). */
  stateEntries = 0
  /** Records a sink made durable and visible, as its commits reported them. */
  committed = 0
  /** Told the duration of each timed piece of work (a batch, a write), in milliseconds; the runtime's metrics set it. */
  timed: (ms: number) => void = () => {}
  /** One batch in this many gets a span (0: none); the runtime sets it from `Spans.BatchSpanRate`. */
  spanEvery = 0
  private spanCountdown = 0
  /** Warning messages not yet logged by the runtime (bounded). */
  readonly pendingWarnings: Array<string> = []

  constructor(info: StageInfo) {
    this.info = info
  }

  /** Adds the time of one piece of the stage's work (a batch, a sink write), in milliseconds. */
  busy(ms: number): void {
    this.busyMs += ms
    this.timed(ms)
  }

  /** Whether the batch about to be handled gets a span: the first one, then one in `spanEvery`. */
  sampleSpan(): boolean {
    if (this.spanEvery <= 0) return false
    if (this.spanCountdown > 0) {
      this.spanCountdown--
      return false
    }
    this.spanCountdown = this.spanEvery - 1
    return true
  }

  /**
   * Records a warning; the first few of a run are kept for the log, all of them are counted. A function is only called
   * for the warnings that are logged (a message that names its record costs nothing for the others).
   */
  warn(message: string | (() => string)): void {
    this.warned++
    if (this.warned <= MAX_LOGGED_WARNINGS) this.pendingWarnings.push(typeof message === "string" ? message : message())
  }

  /** Takes the warnings not yet logged. */
  drainWarnings(): ReadonlyArray<string> {
    return this.pendingWarnings.splice(0, this.pendingWarnings.length)
  }
}

/** The counts of a stage, as JSON (what a split run's read phase reports of each stage). */
export interface StageCounts {
  readonly recordsIn: number
  readonly recordsOut: number
  readonly filtered: number
  readonly rejected: number
  readonly consumed: number
  readonly warned: number
  readonly batches: number
  readonly busyMs: number
  readonly bytes: number
}

/** Adds counts to a counter. */
export const addCounts = (counter: StageCounter, counts: StageCounts): void => {
  counter.recordsIn += counts.recordsIn
  counter.recordsOut += counts.recordsOut
  counter.filtered += counts.filtered
  counter.rejected += counts.rejected
  counter.consumed += counts.consumed
  counter.warned += counts.warned
  counter.batches += counts.batches
  counter.busyMs += counts.busyMs
  counter.bytes += counts.bytes
}

/** The states a run that keeps state per source part restored for each part (stage name → state). */
export interface PartitionStates {
  readonly restored: (part: string) => Readonly<Record<string, unknown>> | undefined
  /** Where the part's restored checkpoint resumes (the position its states cover up to), if it has one. */
  readonly resumed: (part: string) => string | undefined
  /** The snapshot key of a part's states. */
  readonly key: (part: string) => string
}

/** One part of a split input (see `Source.split`), as JSON, so that another process can read it. */
export interface SplitPart {
  /** Unique within its source: a slice's range, a path, the first key of a group of objects. */
  readonly id: string
  /** One line for a person (what `validate --parts` prints). */
  readonly description: string
  /** Its size, when the source knows it ahead. */
  readonly size?: InputSize | undefined
  /** What the source needs to read it again: connector-specific JSON. */
  readonly spec: unknown
}

/**
 * A run of one phase of a split pipeline (see `cluster/`): the input's parts are read apart, each through the stages
 * before `cut` (the `read` phase, one run per part), and what they gave is staged; then one run takes the staged
 * batches through the stage at `cut` and those after it, to the sink (the `finish` phase).
 */
export interface Split {
  readonly phase: "read" | "finish"
  /**
   * The index, in the pipeline's stages, of the first stage that needs the whole input (a stateful or many-to-one
   * stage); the number of stages when none does. The read phase runs the stages before it, the finish phase the rest.
   */
  readonly cut: number
  /**
   * The stage at the cut merges partial states: in the read phase it runs too and emits its partial state (JSON) at
   * the end of the part instead of its results; in the finish it merges the parts' partial states and emits the results.
   */
  readonly merge?: boolean | undefined
  /** The read phase: the parts the pipeline's source reads (as its `split` listed them). */
  readonly parts?: ReadonlyArray<SplitPart> | undefined
  /**
   * The read phase: `false` unless these are the run's first part. What a stage emits once per run rather than per
   * record (the rejected rows of a join's lookup side) is emitted by the first part only.
   */
  readonly first?: boolean | undefined
  /**
   * The read phase: the part's place in the run's list of parts. What depends on arrival order across parts (`first`
   * and `last` aggregates) orders the parts by it, so that a split run's result does not depend on which part a
   * runner read first.
   */
  readonly index?: number | undefined
  /** The split run's id (a read phase's own run id names its part too): what a runner caches per run is keyed by it. */
  readonly run?: string | undefined
  /**
   * The finish phase: the rejected records the parts dropped on purpose (no dead-letter sink, `dropRejected`); the
   * quality thresholds count them with the rejects the finish sees. The parts do not check the thresholds themselves:
   * they are the run's, judged once on the whole run.
   */
  readonly dropped?: number | undefined
  /** The finish phase: the staged batches, read in place of the source. */
  readonly staged?: Stream.Stream<Batch<unknown>, PipelineError> | undefined
}

/** What a stage sees of the run it is part of. */
export interface RunContext {
  readonly runId: string
  readonly pipeline: string
  /** The attempt this context counts (1 for the first). */
  readonly attempt: number
  /**
   * Where a resumable source starts each part it names (part → next position), as the sink stored them with its data
   * (see `Checkpoint`); absent or empty: the source starts as configured.
   */
  readonly resume?: Checkpoint.Resume | undefined
  /**
   * Loads the positions the sink stores now (see `Checkpoint`), for a resumable source whose parts move while it
   * reads (a Kafka partition assigned to this process by a rebalance starts where the sink's data of it ends). Absent:
   * the sink stores none, or the run resumes from a checkpoint of its states (whose positions are `resume`).
   */
  readonly reloadPositions?:
    | ((parts: ReadonlyArray<string>) => Effect.Effect<Checkpoint.Resume, PipelineError>)
    | undefined
  /**
   * Set when the stateful stages keep one state per source part (`StreamingPolicy.stateScope: "partition"`): the
   * states saved for each part, loaded by `reloadPositions` as parts are assigned.
   */
  readonly partitionStates?: PartitionStates | undefined
  /** The states of the stateful stages, by stage name, from the checkpoint a run resumes from (see `State.ts`). */
  readonly restored?: Readonly<Record<string, unknown>> | undefined
  /** Checkpoint barriers to inject right after the source (a streaming run with a state store and stateful stages). */
  readonly barriers?: Stream.Stream<number> | undefined
  /**
   * Set by the source stage for its source only: the parts of its input to read (see `Source.split`); absent: all.
   */
  readonly parts?: ReadonlyArray<SplitPart> | undefined
  /** Set when the run is one phase of a split pipeline (see {@link Split}). */
  readonly split?: Split | undefined
  /**
   * Set for the stage at the cut of a split run that merges partial states (see `Split.merge`): `partial` in the read
   * phase (emit the state), `merge` in the finish (take the parts' states, emit the results).
   */
  readonly combine?: "partial" | "merge" | undefined
  /**
   * Set by the runtime when the pipeline's source and sink agreed to move records as bytes (see `PassThrough`): the
   * source then reads raw batches of these fields, in this order.
   */
  readonly passThrough?: PassThrough.Agreement | undefined
  /** Milliseconds from the run's Clock (so TestClock controls it). */
  readonly now: () => number
  /** The counter of a stage, created on first use; stages are reported in the order they were first asked for. */
  readonly stage: (info: StageInfo) => StageCounter
  readonly stages: () => ReadonlyArray<StageCounter>
}

/** A fresh run context. */
export const makeRunContext = (options: {
  readonly runId: string
  readonly pipeline: string
  readonly attempt?: number | undefined
  readonly resume?: Checkpoint.Resume | undefined
  readonly reloadPositions?:
    | ((parts: ReadonlyArray<string>) => Effect.Effect<Checkpoint.Resume, PipelineError>)
    | undefined
  readonly partitionStates?: PartitionStates | undefined
  readonly restored?: Readonly<Record<string, unknown>> | undefined
  readonly barriers?: Stream.Stream<number> | undefined
  readonly split?: Split | undefined
  /** Counts the stages start from (a split run's finish phase starts from what its read phase counted). */
  readonly counts?: ReadonlyMap<string, StageCounts> | undefined
  readonly now: () => number
  /** Told of each stage counter as it is created (the runtime registers its metrics). */
  readonly onStage?: ((counter: StageCounter) => void) | undefined
}): RunContext => {
  const counters = new Map<string, StageCounter>()
  return {
    runId: options.runId,
    pipeline: options.pipeline,
    attempt: options.attempt ?? 1,
    ...(options.resume === undefined ? {} : { resume: options.resume }),
    ...(options.reloadPositions === undefined ? {} : { reloadPositions: options.reloadPositions }),
    ...(options.partitionStates === undefined ? {} : { partitionStates: options.partitionStates }),
    ...(options.restored === undefined ? {} : { restored: options.restored }),
    ...(options.barriers === undefined ? {} : { barriers: options.barriers }),
    ...(options.split === undefined ? {} : { split: options.split }),
    now: options.now,
    stage: (info) => {
      let counter = counters.get(info.name)
      if (counter === undefined) {
        counter = new StageCounter(info)
        const counts = options.counts?.get(info.name)
        if (counts !== undefined) addCounts(counter, counts)
        counters.set(info.name, counter)
        options.onStage?.(counter)
      }
      return counter
    },
    stages: () => Array.from(counters.values())
  }
}
