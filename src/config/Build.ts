/**
 * Building a pipeline from a decoded config: the same values the typed API gives, so config is a second front door,
 * not a second engine. Everything that can be checked before running is checked here (schema names, field names in
 * expressions and rules, write modes), with the JSON path of the problem.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as NodeFileState from "../connectors/file/NodeFileState.ts"
import * as NodePostgres from "../connectors/postgres/NodePostgres.ts"
import { connectionOptions } from "../connectors/sql/SqlConfig.ts"
import * as ConfigError from "../core/ConfigError.ts"
import type { DeadLetter } from "../core/DeadLetter.ts"
import * as Flow from "../core/Flow.ts"
import type { RecordSchema } from "../core/RecordSchema.ts"
import type * as Retry from "../core/Retry.ts"
import type { Sink } from "../core/Sink.ts"
import type * as State from "../core/State.ts"
import * as Pipeline from "../pipeline/Pipeline.ts"
import * as Connectors from "./Connectors.ts"
import type { PipelineConfig } from "./PipelineConfig.ts"
import * as Transforms from "./Transforms.ts"

/** Finds record schemas by name (from `schemas/`); fails with a ConfigError at the given path. */
export type SchemaLookup = (
  name: string,
  path: string
) => Effect.Effect<RecordSchema<Transforms.AnyRecord>, ConfigError.ConfigError>

/** A pipeline built from a config. */
export type ConfigPipeline = Pipeline.Pipeline<unknown, Connectors.Services>

const retryPolicy = (config: PipelineConfig["retry"]): Retry.RetryPolicy => ({
  attempts: config?.attempts ?? 3,
  initialDelay: (config?.initial_delay ?? "5 seconds") as Duration.Input,
  factor: config?.factor ?? 2,
  ...(config?.max_delay === undefined ? {} : { maxDelay: config.max_delay as Duration.Input })
})

/**
 * The layer of a config's `connections`: one pool (PostgreSQL, MySQL) or client (Kafka, S3) per named connection,
 * opened when the run starts and closed when it ends, shared by every source and sink naming it.
 */
export const connections = (config: PipelineConfig): Layer.Layer<Connectors.ConnectionServices> => {
  const layers = Connectors.connectionLayers(config.connections ?? {})
  const state = stateStore(config)
  const all = state === undefined ? layers : [...layers, state as unknown as Layer.Layer<Connectors.ConnectionServices>]
  return all.length === 0
    ? (Layer.empty as unknown as Layer.Layer<Connectors.ConnectionServices>)
    : Layer.mergeAll(...(all as [Layer.Layer<Connectors.ConnectionServices>]))
}

/**
 * The state store of a streaming config (`streaming.state`, default a local `.etl-state` directory), where its windows
 * and aggregates are checkpointed; none for batch configs and `{"type": "none"}`.
 */
export const stateStore = (config: PipelineConfig): Layer.Layer<State.StateStore> | undefined => {
  if ((config.mode ?? "batch") !== "streaming") return undefined
  const state = config.streaming?.state ?? { type: "file" as const }
  switch (state.type) {
    case "none":
      return undefined
    case "file":
      return NodeFileState.layer(state.path ?? ".etl-state")
    case "postgres": {
      const connection = config.connections?.[state.connection]
      return connection?.type === "postgres"
        ? NodePostgres.stateStore(connectionOptions(connection), { name: state.table ?? "etl_state" })
        : undefined
    }
  }
}

/** A flow built from a config, before its sink. */
export type ConfigFlow = Flow.Flow<Transforms.AnyRecord, unknown, Connectors.Services>

/**
 * Ways to build a config's pipeline differently, for a run that is not the config's own (a replay of dead letters,
 * `config/Replay.ts`): the source is replaced, and each transform's place in the flow can be wrapped.
 */
export interface BuildHooks {
  /** Replaces the source the config describes (given as built) by another. */
  readonly source?: (built: Connectors.BuiltSource) => Effect.Effect<Connectors.BuiltSource, ConfigError.ConfigError>
  /**
   * Adds the transform at `index` of `$.transforms` to `flow`: `apply` adds it as a plain build would; the hook may
   * add something before and after it.
   */
  readonly transform?: (index: number, flow: ConfigFlow, apply: (flow: ConfigFlow) => ConfigFlow) => ConfigFlow
  /** Wraps the flow once every transform is added, before the sink. */
  readonly end?: (flow: ConfigFlow) => ConfigFlow
}

/** Builds the pipeline a config describes. */
export const build = (
  config: PipelineConfig,
  options: { readonly file: string; readonly schema: SchemaLookup; readonly hooks?: BuildHooks }
): Effect.Effect<ConfigPipeline, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    const env = (path: string, defaultName: string): Connectors.BuildEnv => ({
      file: options.file,
      path,
      defaultName,
      schema: options.schema,
      pipeline: config.name,
      connections: config.connections ?? {},
      streaming
    })
    const streaming = (config.mode ?? "batch") === "streaming"
    if (!streaming && config.streaming !== undefined)
      return yield* Effect.fail(
        ConfigError.single(options.file, "$.streaming", 'Streaming settings need "mode": "streaming"')
      )
    const state = config.streaming?.state
    if (state?.type === "postgres" && config.connections?.[state.connection]?.type !== "postgres")
      return yield* Effect.fail(
        ConfigError.single(
          options.file,
          "$.streaming.state.connection",
          `"${state.connection}" is not a postgres connection of "connections"${
            Object.entries(config.connections ?? {}).some(([, c]) => c.type === "postgres")
              ? `; postgres connections: ${Object.entries(config.connections ?? {})
                  .filter(([, c]) => c.type === "postgres")
                  .map(([n]) => n)
                  .join(", ")}`
              : ""
          }`
        )
      )
    const original = yield* Connectors.buildSource(config.source, env("$.source", "source"))
    const built = options.hooks?.source === undefined ? original : yield* options.hooks.source(original)
    if (streaming && built.source.bounded)
      return yield* Effect.fail(
        ConfigError.single(
          options.file,
          "$.mode",
          `A ${config.source.type} source is bounded and cannot run in streaming mode; use "mode": "batch"`
        )
      )
    let flow: ConfigFlow = Flow.from(built.source)
    let fields = built.fields
    const transforms = config.transforms ?? []
    for (let i = 0; i < transforms.length; i++) {
      const step = yield* Transforms.build(transforms[i]!, {
        file: options.file,
        path: `$.transforms[${i}]`,
        fields,
        // A joined source names schemas and connections as the main source does.
        schema: options.schema,
        connections: config.connections ?? {},
        pipeline: config.name,
        streaming
      })
      flow = options.hooks?.transform === undefined ? step.apply(flow) : options.hooks.transform(i, flow, step.apply)
      fields = step.fields
    }
    if (options.hooks?.end !== undefined) flow = options.hooks.end(flow)
    const sink = yield* Connectors.buildSink(config.sink, { ...env("$.sink", "sink"), fields })
    const sinkProblem = streaming ? Pipeline.unboundedProblem(sink.mode) : undefined
    if (sinkProblem !== undefined)
      return yield* Effect.fail(ConfigError.single(options.file, "$.sink.mode", sinkProblem))
    let pipeline: ConfigPipeline = flow.pipe(
      Pipeline.to(sink),
      Pipeline.named(config.name),
      Pipeline.withRetry(retryPolicy(config.retry)),
      Pipeline.withStreaming({
        ...(config.streaming?.commit_interval === undefined
          ? {}
          : { commitInterval: config.streaming.commit_interval as Duration.Input }),
        ...(config.streaming?.commit_records === undefined ? {} : { commitRecords: config.streaming.commit_records }),
        ...(config.streaming?.state_scope === undefined ? {} : { stateScope: config.streaming.state_scope })
      }),
      Pipeline.withQuality({
        ...(config.quality?.max_rejected === undefined ? {} : { maxRejected: config.quality.max_rejected }),
        ...(config.quality?.max_rejected_ratio === undefined
          ? {}
          : { maxRejectedRatio: config.quality.max_rejected_ratio }),
        ...(config.quality?.drop_rejected === undefined ? {} : { dropRejected: config.quality.drop_rejected }),
        ...(config.quality?.allow_empty_overwrite === undefined
          ? {}
          : { allowEmptyOverwrite: config.quality.allow_empty_overwrite })
      })
    )
    if (config.dead_letters !== undefined) {
      // Every field a dead letter can have, so that a SQL table of them gets its columns from the first write on (a
      // first batch of dead letters without origins would leave the origin column out of the whole load).
      const deadLetters = yield* Connectors.buildSink(config.dead_letters, {
        ...env("$.dead_letters", "dead-letters"),
        fields: ["stage", "reason", "message", "record", "origin"]
      })
      const problem = streaming ? Pipeline.unboundedProblem(deadLetters.mode) : undefined
      if (problem !== undefined)
        return yield* Effect.fail(ConfigError.single(options.file, "$.dead_letters.mode", problem))
      // A dead letter is a plain object too; config sinks take any plain object.
      pipeline = Pipeline.withDeadLetters(deadLetters as unknown as Sink<DeadLetter, unknown, Connectors.Services>)(
        pipeline
      )
    }
    return pipeline
  })
