/**
 * Sinks: where records go.
 *
 * A sink has a write mode and opens a writer for one run attempt. The writer takes batches (`write`) and makes them
 * visible (`commit`). Closing the writer's Scope without a commit aborts: an overwrite leaves the old data, a staged
 * append leaves nothing. `durability` tells the runtime when source positions may be acknowledged.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Checkpoint from "./Checkpoint.ts"
import type * as PassThrough from "./PassThrough.ts"
import type { Attributes, Dataset } from "./Stage.ts"

/** How a sink treats existing data. */
export type WriteMode = "append" | "overwrite" | "upsert"

/** All write modes, in the order they are documented. */
export const writeModes: ReadonlyArray<WriteMode> = ["append", "overwrite", "upsert"]

/** What a sink reports after a commit. */
export interface SinkResult {
  /** Records the sink accepted (inserted or updated). */
  readonly written: number
  /** Of those, records that replaced existing ones (upsert), when the target can tell. */
  readonly updated?: number
  /** Where the data went: a directory, a table, a topic. */
  readonly location?: string
  /** Connector-specific facts (part files written, bytes, ...). */
  readonly details?: Readonly<Record<string, unknown>>
}

/** The open side of a sink for one run attempt. */
export interface SinkWriter<in A, out E = never> {
  /** Writes one batch. When `durability` is `per-write`, the batch is durable once this succeeds. */
  readonly write: (records: ReadonlyArray<A>) => Effect.Effect<void, E>
  /** Makes everything written visible, atomically where the mode promises it. */
  readonly commit: Effect.Effect<SinkResult, E>
  /**
   * With {@link Sink.positions}: sets the source positions the next `commit` stores, atomically with the data (an
   * offsets table in the same transaction, a checkpoint beside the part file). The runtime calls it before `commit`.
   */
  readonly checkpoint?: ((checkpoint: Checkpoint.Checkpoint) => Effect.Effect<void, E>) | undefined
  /** Writes one batch whose records travel as bytes (see `PassThrough`); present when the sink has `writesRaw`. */
  readonly writeRaw?: ((raw: PassThrough.Raw) => Effect.Effect<void, E>) | undefined
}

/**
 * How a sink wants its input gathered: the runtime joins consecutive batches into one `write` of at least `size`
 * records, or of what arrived within `linger` of the first batch, whichever comes first (timed by `Clock`). The joined
 * batches' source positions are acknowledged only after that write succeeded.
 */
export interface Batching {
  readonly size: number
  readonly linger: Duration.Input
}

/**
 * How a sink stages the parts of a split run in its own storage (see `runtime/Split.ts`): each part's records go to a
 * staging area next to the target (a staging table in the target's database), and the finish moves every part's
 * records in with one commit, on the target's server. The records then never pass through the cluster's database or
 * the one process that finishes, so a pipeline without an aggregate scales with its parts.
 */
export interface PartStaging<out E = never, out R = never> {
  /** For logs and `validate --parts`: `staging tables next to public.orders`. */
  readonly description: string
  /** Opens the writer of one part's staging area, replacing what an earlier read of the part staged. */
  readonly part: (run: string, part: string) => Effect.Effect<SinkWriter<unknown, E>, E, R | Scope.Scope>
  /**
   * Opens the finish's writer: an `open` whose commit also takes every part's staged records, in the parts' order, as
   * the sink's mode says (an append adds them, an overwrite swaps them in, an upsert merges them), in that one commit.
   */
  readonly finish: (
    run: string,
    parts: ReadonlyArray<StagedPart>
  ) => Effect.Effect<SinkWriter<unknown, E>, E, R | Scope.Scope>
  /** Removes what the parts staged, once the run has ended (what is not there is skipped). */
  readonly clear: (run: string, parts: ReadonlyArray<string>) => Effect.Effect<void, E, R>
}

/** A part of a split run as the finish of a sink's own staging sees it: its id, and how many records it staged. */
export interface StagedPart {
  readonly id: string
  readonly records: number
}

/** A sink accepting records of type `A`. */
export interface Sink<in A, out E = never, out R = never> {
  readonly name: string
  readonly type: string
  readonly description: string
  readonly mode: WriteMode
  /**
   * `per-write`: each successful `write` is durable, so the batch's source position can be acknowledged right away
   * (streaming-friendly). `on-commit`: nothing is visible before `commit`, so acknowledgements wait for it.
   */
  readonly durability: "per-write" | "on-commit"
  /** Gather small batches into larger writes (see {@link Batching}); absent: every batch is written as it comes. */
  readonly batching?: Batching | undefined
  /** Opens a writer. Its Scope closing without `commit` aborts the write. */
  readonly open: Effect.Effect<SinkWriter<A, E>, E, R | Scope.Scope>
  /**
   * Checks the target without writing to it (it exists or can be created, it accepts the records' fields): the checks
   * `open` makes before the first write, for a `validate --connect`. Absent: the sink has nothing to check ahead.
   */
  readonly check?: Effect.Effect<void, E, R> | undefined
  /** The dataset it writes (for lineage events), when it names one. */
  readonly dataset?: Dataset | undefined
  /** Span and metric attributes (OpenTelemetry semantic conventions: `db.system.name`, `messaging.system`, ...). */
  readonly attributes?: Attributes | undefined
  /**
   * Present when the sink stores source positions with its data (its writers implement `checkpoint`): a pipeline from
   * a resumable source then resumes where the last commit ended, and delivers each record exactly once.
   */
  readonly positions?: Checkpoint.Store<E, R> | undefined
  /** Present when the sink stages a split run's parts in its own storage (see {@link PartStaging}). */
  readonly staging?: PartStaging<E, R> | undefined
  /**
   * Present when the sink can stage the parts of a run on threads of one process, where every part is written on the
   * machine that finishes (local files: each part encodes its own part files, and the finish moves them in); a
   * cluster's runners stage in `staging`, or in the cluster's staging.
   */
  readonly threadStaging?: PartStaging<E, R> | undefined
  /** Whether the sink takes records as bytes from a source of its kind (see `PassThrough`); its writer then has `writeRaw`. */
  readonly writesRaw?: PassThrough.SinkSide<E, R> | undefined
}

/** Builds a sink. */
export const make = <A, E = never, R = never>(sink: Sink<A, E, R>): Sink<A, E, R> => sink

/** The records a `collect` sink holds, for assertions in tests. */
export interface Collected<A> {
  /** Committed records, in order (what a reader of the target would see). */
  readonly records: ReadonlyArray<A>
  /** How many commits happened. */
  readonly commits: number
}

/**
 * An in-memory sink for tests: `append` adds to what is there, `overwrite` replaces it at commit. Read the state with
 * `collected()`.
 *
 * @example
 * const out = Sink.collect<Transaction>("out")
 * // ... run ...
 * assert.strictEqual(out.collected().records.length, 3)
 */
export const collect = <A>(
  name: string,
  options?: { readonly mode?: "append" | "overwrite" }
): Sink<A> & { readonly collected: () => Collected<A> } => {
  let committed: Array<A> = []
  let commits = 0
  const mode = options?.mode ?? "append"
  return {
    name,
    type: "memory",
    description: `in-memory ${mode} (${name})`,
    mode,
    durability: "on-commit",
    collected: () => ({ records: committed, commits }),
    open: Effect.sync(() => {
      const staged: Array<A> = []
      return {
        write: (records) =>
          Effect.sync(() => {
            for (let i = 0; i < records.length; i++) staged.push(records[i]!)
          }),
        commit: Effect.sync(() => {
          committed = mode === "overwrite" ? staged.slice() : committed.concat(staged)
          commits++
          return { written: staged.length, location: `memory:${name}` }
        })
      }
    })
  }
}
