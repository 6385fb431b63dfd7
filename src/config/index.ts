/**
 * The JSON front door (`effect-etl/config`): the pipeline config Schema, loading (with `$env`/`$secret` references and
 * schema lookup), building configs into the same pipeline values the typed API gives, and replaying dead letters
 * through them. Importing it loads every connector's driver, since a config may name any of them.
 */
export * as ConfigBuild from "./Build.ts"
export * as Connectors from "./Connectors.ts"
export * as ConfigLoad from "./Load.ts"
export * as ObservabilityConfig from "./ObservabilityConfig.ts"
export * as PipelineConfig from "./PipelineConfig.ts"
export * as Records from "./Records.ts"
export * as Replay from "./Replay.ts"
export * as Transforms from "./Transforms.ts"
