/**
 * Checkpointed state of streaming pipelines.
 *
 * A streaming pipeline with stateful stages (windows, windowed aggregates, joins) checkpoints at every commit interval,
 * the way Flink does with barriers: the runtime injects a {@link Barrier} right after the source; it flows through the
 * stages in order, and each stateful stage, when it takes the barrier, adds its state to it and releases the acks it
 * held (the records it absorbed are now in that state). When the barrier reaches the sink, everything emitted before it
 * was written: the runtime commits the sink, saves a {@link Snapshot} — the stages' states and the source positions up
 * to the barrier — in the {@link StateStore}, and only then acknowledges the source. A new run restores the stages'
 * states and starts the source at the snapshot's positions: its results are those of a run that was never stopped.
 *
 * The store is shaped like Effect's `KeyValueStore` (one value per pipeline, a JSON text): {@link layerMemory} for tests,
 * a local directory (`File.stateStore`) by default, PostgreSQL (`NodePostgres.stateStore`) for processes that share
 * it.
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as KeyValueStore from "effect/persistence/KeyValueStore"

/** A stage's state as it travels on a barrier (JSON-able). */
export interface StageState {
  readonly stage: string
  readonly state: unknown
}

/** A checkpoint barrier (see the module comment). */
export interface Barrier {
  readonly id: number
  readonly states: ReadonlyArray<StageState>
  /**
   * The source parts a rebalance takes away after this barrier: stages that keep state per part save theirs for them,
   * then drop it (another process restores it).
   */
  readonly revoked?: ReadonlyArray<string> | undefined
}

/** The state of a stage that keeps one per source part, as it travels on a barrier (see `Steps.partitioned`). */
export interface PartitionedState {
  readonly partitioned: true
  /** Part → the state of the stage for it. */
  readonly parts: Readonly<Record<string, unknown>>
}

/** True for the state of a stage that keeps one per part. */
export const isPartitioned = (state: unknown): state is PartitionedState =>
  typeof state === "object" && state !== null && (state as { readonly partitioned?: unknown }).partitioned === true

/** What a checkpoint saves for a pipeline. */
export interface Snapshot {
  readonly version: 1
  readonly pipeline: string
  /** Source part → the next position to read. */
  readonly resume: Readonly<Record<string, string>>
  /** Stage name → its state. */
  readonly stages: Readonly<Record<string, unknown>>
  readonly savedAt: string
}

/** A state store that failed (unreachable, unreadable, a snapshot that does not parse). */
export class StateError extends Data.TaggedError("StateError")<{
  readonly message: string
  readonly retryable: boolean
  readonly cause?: unknown
}> {}

/** Where snapshots are kept. */
export interface StateStoreShape {
  /** For a person: `directory .etl-state`, `table etl_state`. */
  readonly description: string
  readonly load: (pipeline: string) => Effect.Effect<Snapshot | undefined, StateError>
  readonly save: (snapshot: Snapshot) => Effect.Effect<void, StateError>
}

/** The state store service; without it, streaming stages keep their state in memory only (rebuilt on restart). */
export class StateStore extends Context.Service<StateStore, StateStoreShape>()("effect-etl/core/StateStore") {}

const keyOf = (pipeline: string) => `pipeline:${pipeline}`

const parse = (pipeline: string, text: string, description: string): Effect.Effect<Snapshot, StateError> => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    value = undefined
  }
  const s = value as Partial<Snapshot> | undefined
  if (
    typeof s !== "object" ||
    s === null ||
    s.version !== 1 ||
    typeof s.resume !== "object" ||
    s.resume === null ||
    typeof s.stages !== "object" ||
    s.stages === null
  )
    return Effect.fail(
      new StateError({
        message: `The state of pipeline ${JSON.stringify(pipeline)} in ${description} is not a snapshot effect-etl wrote (expected JSON with version 1, resume and stages); remove it to start over`,
        retryable: false
      })
    )
  return Effect.succeed(s as Snapshot)
}

/** A state store over a key-value store: one JSON value per pipeline, under `pipeline:<name>`. */
export const fromKeyValueStore = (store: KeyValueStore.KeyValueStore, description: string): StateStoreShape => ({
  description,
  load: (pipeline) =>
    store.get(keyOf(pipeline)).pipe(
      Effect.mapError(
        (cause) =>
          new StateError({
            message: `Cannot read the state of ${JSON.stringify(pipeline)} from ${description}: ${cause.message}`,
            retryable: true,
            cause
          })
      ),
      Effect.flatMap((text) =>
        text === undefined ? Effect.void.pipe(Effect.as(undefined)) : parse(pipeline, text, description)
      )
    ),
  save: (snapshot) =>
    store.set(keyOf(snapshot.pipeline), JSON.stringify(snapshot)).pipe(
      Effect.mapError(
        (cause) =>
          new StateError({
            message: `Cannot save the state of ${JSON.stringify(snapshot.pipeline)} to ${description}: ${cause.message}`,
            retryable: true,
            cause
          })
      )
    )
})

/** A state store in memory (for tests: it lives as long as the layer). */
export const layerMemory: Layer.Layer<StateStore> = Layer.effect(
  StateStore,
  Effect.map(Effect.service(KeyValueStore.KeyValueStore), (kv) => fromKeyValueStore(kv, "memory"))
).pipe(Layer.provide(KeyValueStore.layerMemory))

/** A state store over the `KeyValueStore` of the context. */
export const layerKeyValueStore = (description: string): Layer.Layer<StateStore, never, KeyValueStore.KeyValueStore> =>
  Layer.effect(
    StateStore,
    Effect.map(Effect.service(KeyValueStore.KeyValueStore), (kv) => fromKeyValueStore(kv, description))
  )
