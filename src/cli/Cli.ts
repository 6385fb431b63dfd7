/**
 * The command line: `run`, `validate`, `replay` (dead letters back through a pipeline), `schema`, `vault` and `worker`,
 * with `--help` on each.
 *
 * Exit codes: 0 when all went well, 1 when a run failed, 2 for bad usage or a bad config. The RunReport is printed to
 * stdout as JSON; logs are lines on stderr (`--log-format pretty|json`, `--log-level`); a progress line is drawn on
 * stderr when it is a terminal.
 */
import * as nodePath from "node:path"
import { pathToFileURL } from "node:url"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import { Argument, Command, Flag, GlobalFlag } from "effect/cli"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import * as ObservabilityConfig from "../config/ObservabilityConfig.ts"
import * as SqlBuild from "../config/SqlBuild.ts"
import { messageOf } from "../core/Errors.ts"
import * as Source from "../core/Source.ts"
import type { SplitPart } from "../core/Stage.ts"
import { StopSignal } from "../core/Stop.ts"
import * as Export from "../observability/Export.ts"
import * as Lineage from "../observability/Lineage.ts"
import * as Logging from "../observability/Logging.ts"
import * as Pipeline from "../pipeline/Pipeline.ts"
import { RunObservers } from "../runtime/Observers.ts"
import { Progress } from "../runtime/Progress.ts"
import * as Runner from "../runtime/Runner.ts"
import * as Split from "../runtime/Split.ts"
import * as Threads from "../runtime/Threads.ts"
import * as AvroSchema from "../schema/AvroSchema.ts"
import * as Render from "../schema/Render.ts"
import * as SchemaRegistry from "../schema/SchemaRegistry.ts"
import * as Redaction from "../secrets/Redaction.ts"
import * as Vault from "../secrets/Vault.ts"
import { clusterFlag, partBytesFlag, submit, workerCommand } from "./ClusterCommands.ts"
import * as ProgressLine from "./Progress.ts"
import {
  CliFailure,
  configFailure,
  loadConfig,
  loadReplay,
  printError,
  registry,
  schemasFlag,
  services,
  usage
} from "./Shared.ts"
import * as ThreadWorker from "./ThreadWorker.ts"

export { CliFailure }

const quietFlag = Flag.Boolean("quiet").pipe(
  Flag.withAlias("q"),
  Flag.withDescription("No progress line on stderr"),
  Flag.withDefault(false)
)

/**
 * How the process asks a streaming run to stop gracefully: `signal` completes on the first SIGINT/SIGTERM; the CLI calls
 * `armed(true)` while a streaming run is going, so that signal stops the run instead of aborting the process.
 */
export interface GracefulStop {
  readonly signal: Effect.Effect<void>
  readonly armed: (streaming: boolean) => void
}

const isModule = (target: string) => /\.(m?js|m?ts)$/.test(target)

const importPipeline = (target: string) =>
  Effect.gen(function* () {
    const url = pathToFileURL(nodePath.resolve(target)).href
    const mod = yield* Effect.tryPromise({
      try: () => import(url) as Promise<Record<string, unknown>>,
      catch: (cause) => new CliFailure({ message: `Cannot load ${target}: ${messageOf(cause)}`, exitCode: 2 })
    }).pipe(Effect.tapError((e) => printError(e.message)))
    const candidate = mod.default ?? mod.pipeline
    if (!Pipeline.isPipeline(candidate))
      return yield* usage(
        `${target} does not export a pipeline: export it as \`default\` or as \`pipeline\` (a value built with Pipeline.to)`
      )
    const layer = Layer.isLayer(mod.layer) ? (mod.layer as Layer.Layer<unknown>) : undefined
    return { pipeline: candidate, layer }
  })

const otlpEndpointFlag = Flag.String("otlp-endpoint").pipe(
  Flag.withDescription(
    "Send traces, metrics and logs to this OpenTelemetry collector (OTLP/HTTP base URL, e.g. http://127.0.0.1:4318); overrides the config's observability.otlp.endpoint and $OTEL_EXPORTER_OTLP_ENDPOINT"
  ),
  Flag.optional
)
const otlpProtocolFlag = Flag.String("otlp-protocol").pipe(
  Flag.withDescription("http/protobuf (default) or http/json; overrides the config and $OTEL_EXPORTER_OTLP_PROTOCOL"),
  Flag.optional
)
const prometheusPortFlag = Flag.Int("prometheus-port").pipe(
  Flag.withDescription(
    "Serve the run's metrics for Prometheus on this port (0: a free one, logged) at /metrics, for as long as the run goes on"
  ),
  Flag.optional
)
const prometheusHostFlag = Flag.String("prometheus-host").pipe(
  Flag.withDescription("The address the Prometheus endpoint listens on (default 127.0.0.1)"),
  Flag.optional
)
const lineageUrlFlag = Flag.String("lineage-url").pipe(
  Flag.withDescription(
    "Send OpenLineage events to this endpoint (e.g. http://marquez:5000); overrides $OPENLINEAGE_URL"
  ),
  Flag.optional
)
const lineageFileFlag = Flag.String("lineage-file").pipe(
  Flag.withDescription("Append OpenLineage events to this file, one JSON object per line"),
  Flag.optional
)

/**
 * Provides a run with its observability: the export layer (OTLP, Prometheus) for the run's whole life, and the lineage
 * observer beside the observers already there. The layer's scope closes when the run ends, after the exporters have
 * sent what they still held.
 */
const observe = <A, E, R>(run: Effect.Effect<A, E, R>, options: Export.ObservabilityOptions) => {
  const lineage = options.lineage
  const observed =
    lineage === undefined
      ? run
      : Effect.flatMap(Effect.service(RunObservers), (observers) =>
          Effect.provideService(run, RunObservers, [...observers, Lineage.observer(lineage)])
        )
  return Effect.provide(observed, Export.layer(options))
}

const threadsFlag = Flag.Int("threads").pipe(
  Flag.withDescription(
    "A batch run reads the parts of its input (files, ranges of records of a big JSON Lines or CSV file, objects, table slices) on this many threads, through one sink with one commit; overrides the config's \"threads\"; default: the machine's cores (1 on 2 cores or fewer) when every stage works record by record and the sink writes each part itself (files, SQL tables), else 1"
  ),
  Flag.optional
)

const runCommand = (stop: GracefulStop | undefined) =>
  Command.make(
    "run",
    {
      target: Argument.String("target").pipe(
        Argument.withDescription("A pipeline config (.json) or a module exporting a pipeline (.js, .mjs, .ts)")
      ),
      quiet: quietFlag,
      schemas: schemasFlag,
      otlpEndpoint: otlpEndpointFlag,
      otlpProtocol: otlpProtocolFlag,
      prometheusPort: prometheusPortFlag,
      prometheusHost: prometheusHostFlag,
      lineageUrl: lineageUrlFlag,
      lineageFile: lineageFileFlag,
      cluster: clusterFlag.pipe(Flag.optional),
      runId: Flag.String("run-id").pipe(
        Flag.withDescription(
          "With --cluster: the run's id (default: a new one); submitting a run id again waits for that run, or prints its result, without redoing what it finished"
        ),
        Flag.optional
      ),
      partBytes: partBytesFlag,
      threads: threadsFlag
    },
    Effect.fn("cli.run")(function* ({ target, quiet, schemas, cluster, runId, partBytes, threads, ...flags }) {
      if (Option.isSome(threads) && threads.value < 1)
        return yield* usage(`--threads must be 1 or more (it was ${threads.value})`)
      if (Option.isSome(partBytes) && partBytes.value < 1)
        return yield* usage(`--part-bytes must be 1 or more (it was ${partBytes.value})`)
      // The worker threads of a run on threads log as this thread does.
      const chosen = yield* LogFormat
      const log = {
        level: yield* References.MinimumLogLevel,
        format: Option.getOrElse(chosen, () => Logging.defaultFormat().format)
      }
      if (Option.isSome(cluster)) {
        if (isModule(target))
          return yield* usage(
            `${target} is a pipeline module: a cluster run takes a JSON config, whose text the runners build the pipeline from`
          )
        return yield* submit({
          target,
          cluster: cluster.value,
          runId: Option.getOrUndefined(runId),
          schemas,
          partBytes: Option.getOrElse(partBytes, () => Source.defaultSplit.targetBytes)
        })
      }
      const loaded: {
        readonly pipeline: unknown
        readonly layer: Layer.Layer<unknown> | undefined
        readonly observability?: ObservabilityConfig.ObservabilityConfig | undefined
        readonly threads?: number | undefined
        readonly load: ThreadWorker.Load
      } = isModule(target)
        ? yield* Effect.map(importPipeline(target), (imported) => ({
            ...imported,
            load: { kind: "module", path: target, schemas, log } as const
          }))
        : yield* Effect.map(
            Effect.catchTag(loadConfig(target, schemas), "ConfigError", configFailure),
            ({ pipeline, connections, observability, threads, text }) => ({
              pipeline,
              layer: connections as Layer.Layer<unknown>,
              observability,
              threads,
              load: { kind: "config", file: target, text, schemas, log } as const
            })
          )
      const resolved = ObservabilityConfig.resolve(
        {
          otlpEndpoint: Option.getOrUndefined(flags.otlpEndpoint),
          otlpProtocol: Option.getOrUndefined(flags.otlpProtocol),
          prometheusPort: Option.getOrUndefined(flags.prometheusPort),
          prometheusHost: Option.getOrUndefined(flags.prometheusHost),
          lineageUrl: Option.getOrUndefined(flags.lineageUrl),
          lineageFile: Option.getOrUndefined(flags.lineageFile)
        },
        loaded.observability,
        process.env
      )
      if (resolved._tag === "Failure") return yield* usage(resolved.failure.message)
      const observability = resolved.success
      ;(yield* Redaction.Secrets).add(ObservabilityConfig.secretsOf(observability))
      const reporter =
        !quiet && process.stderr.isTTY === true
          ? ProgressLine.terminal(process.stderr)
          : { update: () => {}, done: () => {} }
      const base = services(schemas)
      const provided = loaded.layer === undefined ? base : Layer.merge(base, loaded.layer)
      const pipeline = loaded.pipeline as Pipeline.Pipeline<unknown, never>
      const streaming = !pipeline.bounded && stop !== undefined
      const run = observe(
        (streaming
          ? Runner.execute(pipeline)
          : Threads.run(pipeline, {
              threads: Option.getOrElse(threads, () => loaded.threads ?? Threads.defaultThreads(pipeline)),
              worker: ThreadWorker.script,
              load: loaded.load,
              targetBytes: Option.getOrUndefined(partBytes)
            })
        ).pipe(
          Effect.provideService(Progress, reporter),
          Effect.provideService(StopSignal, stop === undefined ? Effect.never : stop.signal)
        ),
        observability
      )
      const { report, error } = yield* (
        streaming
          ? Effect.acquireUseRelease(
              Effect.sync(() => stop.armed(true)),
              () => run,
              () => Effect.sync(() => stop.armed(false))
            )
          : run
      ).pipe(
        Effect.provide(provided as unknown as Layer.Layer<never>),
        Effect.catchTag("SchemaRegistryError" as never, (e: { readonly message: string }) => usage(e.message))
      )
      return yield* printReport(report, error)
    })
  ).pipe(
    Command.withDescription(
      "Run a pipeline and print its RunReport as JSON; a streaming run stops gracefully on SIGINT/SIGTERM (a second signal aborts it)"
    )
  )

/** Prints a run's report (secrets scrubbed) and fails with exit code 1 when the run failed. */
const printReport = (report: unknown, error: { readonly message: string } | undefined) =>
  Effect.gen(function* () {
    // The report carries error messages, which may quote a value from $env/$secret (a user or table name).
    const secrets = yield* Redaction.Secrets
    yield* Console.log(secrets.scrub(JSON.stringify(report, null, 2)))
    if (error !== undefined) return yield* Effect.fail(new CliFailure({ message: error.message, exitCode: 1 }))
  })

const replayCommand = Command.make(
  "replay",
  {
    config: Argument.String("config").pipe(
      Argument.withDescription("The pipeline config (.json) whose transforms and sink the dead letters go through")
    ),
    from: Flag.String("from").pipe(
      Flag.withDescription(
        "The dead-letter set to replay: a path (a directory of part files, a file, a glob), or CONNECTION:TABLE (postgres, mysql), CONNECTION:TOPIC (kafka), CONNECTION:BUCKET/PREFIX (s3) with a connection of the config"
      )
    ),
    deadLetters: Flag.String("dead-letters").pipe(
      Flag.withDescription(
        "Where the records that still fail go, in the same forms as --from (default: the config's dead_letters); never the set being replayed"
      ),
      Flag.optional
    ),
    force: Flag.Boolean("force").pipe(
      Flag.withDescription(
        "Replay into a sink that appends without keys (a record replayed twice is written twice) or overwrites (its target then holds only the replayed records)"
      ),
      Flag.withDefault(false)
    ),
    quiet: quietFlag,
    schemas: schemasFlag
  },
  Effect.fn("cli.replay")(function* ({ config, from, deadLetters, force, quiet, schemas }) {
    if (isModule(config))
      return yield* usage(`${config} is a pipeline module: replay takes a JSON config, whose stages dead letters name`)
    const replay = yield* Effect.catchTag(
      loadReplay(config, schemas, { from, deadLetters: Option.getOrUndefined(deadLetters), force }),
      "ConfigError",
      configFailure
    )
    const reporter =
      !quiet && process.stderr.isTTY === true
        ? ProgressLine.terminal(process.stderr)
        : { update: () => {}, done: () => {} }
    const { report, error } = yield* Runner.execute(replay.pipeline as Pipeline.Pipeline<unknown, never>).pipe(
      Effect.provideService(Progress, reporter),
      Effect.provideService(StopSignal, Effect.never),
      Effect.provide(Layer.merge(services(schemas), replay.connections) as unknown as Layer.Layer<never>),
      Effect.catchTag("SchemaRegistryError" as never, (e: { readonly message: string }) => usage(e.message))
    )
    return yield* printReport(report, error)
  })
).pipe(
  Command.withDescription(
    "Feed the records of a dead-letter set back through a config's pipeline (after a fix): each re-enters at the stage that rejected it; those that pass are written to the sink, those that still fail go to a new dead-letter set with their new reason and their original origin. Prints the RunReport"
  )
)

const connectFlag = Flag.Boolean("connect").pipe(
  Flag.withDescription(
    "Also connect to the sink and dead-letter targets and run the checks a run makes before its first write (the table exists or can be created, every record field has a column, upsert keys are a unique key), writing nothing"
  ),
  Flag.withDefault(false)
)

/** Runs the checks of the pipeline's sinks against their targets, without writing; prints one line per sink. */
const checkTargets = (pipeline: Pipeline.Pipeline<unknown, unknown>, layer: Layer.Layer<unknown>, schemas: string) =>
  Effect.gen(function* () {
    let failed = 0
    for (const plan of [pipeline.sink, pipeline.deadLetters]) {
      if (plan === undefined) continue
      if (plan.check === undefined) {
        yield* Console.log(`  ${plan.info.name}: nothing to check before writing`)
        continue
      }
      // The connections and services a run gets are what the check needs (the config built it from them).
      const check = plan.check.pipe(
        Effect.provide(Layer.merge(services(schemas), layer) as unknown as Layer.Layer<never>)
      ) as Effect.Effect<void, unknown>
      const outcome = yield* Effect.result(check)
      if (outcome._tag === "Success") yield* Console.log(`  ${plan.info.name}: ready`)
      else {
        failed++
        yield* printError(`${plan.info.name}: ${messageOf(outcome.failure)}`)
      }
    }
    if (failed > 0)
      return yield* Effect.fail(
        new CliFailure({ message: `${failed} sink target(s) would refuse the records`, exitCode: 1 })
      )
  })

const partsFlag = Flag.Boolean("parts").pipe(
  Flag.withDescription(
    "Also list the parts a cluster run (run --cluster) reads apart: table slices, predicates, groups of files or objects; connects to the source to list them"
  ),
  Flag.withDefault(false)
)

/** Prints the parts of a split run, and where the pipeline is cut between its phases. */
const listParts = (
  pipeline: Pipeline.Pipeline<unknown, unknown>,
  layer: Layer.Layer<unknown>,
  schemas: string,
  targetBytes: number
) =>
  Effect.gen(function* () {
    const problem = Split.problemOf(pipeline)
    if (problem !== undefined) {
      yield* Console.log(`parts: one (${problem}): a cluster run reads it on one runner`)
      return
    }
    const plan = Split.planOf(pipeline)
    const listed = yield* Effect.result(
      pipeline.split!({ targetBytes }).pipe(
        Effect.provide(Layer.merge(services(schemas), layer) as unknown as Layer.Layer<never>)
      ) as Effect.Effect<ReadonlyArray<SplitPart>, unknown>
    )
    if (listed._tag === "Failure") {
      yield* printError(`cannot list the parts: ${messageOf(listed.failure)}`)
      return yield* Effect.fail(new CliFailure({ message: "cannot list the parts", exitCode: 1 }))
    }
    const parts = listed.success
    const reads = plan.readStages.map((s) => s.name)
    // A part of a pipeline whose sink stages the parts itself writes to that staging.
    if (plan.native) reads.push(`${pipeline.sink.info.name} (${pipeline.sink.staging!.description})`)
    yield* Console.log(`parts: ${parts.length}, each read through ${reads.join(", ")}`)
    for (const part of parts) {
      const size =
        part.size?.bytes !== undefined
          ? ` (${part.size.bytes} bytes)`
          : part.size?.records !== undefined
            ? ` (${part.size.records} records)`
            : ""
      yield* Console.log(`  ${part.description === part.id ? part.id : `${part.id}: ${part.description}`}${size}`)
    }
    yield* Console.log(
      `finish: ${[...plan.finishStages.map((s) => (s.name === plan.merger ? `${s.name} (merging the parts' partial states)` : s.name)), plan.native ? `${pipeline.sink.info.name} (taking in what the parts staged)` : pipeline.sink.info.name].join(", ")}, on one runner, one commit`
    )
  })

const validateCommand = Command.make(
  "validate",
  {
    config: Argument.String("config").pipe(Argument.withDescription("A pipeline config (.json)")),
    schemas: schemasFlag,
    connect: connectFlag,
    parts: partsFlag,
    partBytes: partBytesFlag
  },
  Effect.fn("cli.validate")(function* ({ config, schemas, connect, parts, partBytes }) {
    if (isModule(config))
      return yield* usage(
        `${config} is a pipeline module: validate checks JSON configs; a module is checked by the TypeScript compiler, and \`run ${config}\` runs it`
      )
    const loaded = yield* Effect.catchTag(loadConfig(config, schemas), "ConfigError", configFailure)
    yield* Console.log(`${config} is valid.`)
    for (const line of Pipeline.describe(loaded.pipeline)) yield* Console.log(line)
    if (parts)
      yield* listParts(
        loaded.pipeline as Pipeline.Pipeline<unknown, unknown>,
        loaded.connections as Layer.Layer<unknown>,
        schemas,
        Option.getOrElse(partBytes, () => Source.defaultSplit.targetBytes)
      )
    if (connect) {
      yield* Console.log("targets:")
      yield* checkTargets(
        loaded.pipeline as Pipeline.Pipeline<unknown, unknown>,
        loaded.connections as Layer.Layer<unknown>,
        schemas
      )
    }
  })
).pipe(
  Command.withDescription(
    "Check a pipeline config and print what it would do, without running it; with --connect, also check its sink targets"
  )
)

const schemaList = Command.make("list", { schemas: schemasFlag }, ({ schemas }) =>
  Effect.gen(function* () {
    const registry = yield* SchemaRegistry.SchemaRegistry
    for (const entry of yield* registry.list) yield* Console.log(`${entry.name}\t${entry.fullName}\t${entry.file}`)
  }).pipe(Effect.provide(registry(schemas)))
).pipe(Command.withDescription("List the Avro schemas: name, Avro full name, file"))

const schemaShow = Command.make(
  "show",
  {
    name: Argument.String("name").pipe(Argument.withDescription("A schema name (file base name or Avro full name)")),
    schemas: schemasFlag,
    as: Flag.Literals("as", Render.formats).pipe(
      Flag.withDescription(
        "The form to print: avro (the schema itself), typescript (the record types a pipeline sees), json-schema (the JSON records the JSON Lines format accepts), postgres-ddl or mysql-ddl (the CREATE TABLE a sink with create_if_missing runs)"
      ),
      Flag.withDefault("avro" as const)
    ),
    table: Flag.String("table").pipe(
      Flag.withDescription(
        "DDL: the table's name, as schema.table or table (default: the record's name in snake_case)"
      ),
      Flag.withDefault("")
    ),
    keys: Flag.String("keys").pipe(
      Flag.withDescription("DDL: the primary key's columns, comma-separated (an upsert sink's keys)"),
      Flag.withDefault("")
    )
  },
  ({ name, schemas, as, table, keys }) =>
    Effect.gen(function* () {
      const registry = yield* SchemaRegistry.SchemaRegistry
      const entry = yield* registry.get(name)
      switch (as) {
        case "avro":
          return yield* Console.log(JSON.stringify(entry.avro, null, 2))
        case "typescript":
          return yield* Console.log(Render.toTypeScript(entry.avro))
        case "json-schema":
          return yield* Console.log(JSON.stringify(Render.toJsonSchema(entry.avro), null, 2))
      }
      const made = SqlBuild.createTableOf(
        as === "postgres-ddl" ? "postgres" : "mysql",
        entry.avro,
        table === "" ? snakeCase(AvroSchema.shortName(entry.fullName ?? entry.name)) : table,
        keys === "" ? [] : keys.split(",").map((k) => k.trim())
      )
      if ("problem" in made) return yield* usage(`schema ${name} has no ${as}: ${made.problem}`)
      yield* Console.log(made.sql)
    }).pipe(Effect.provide(registry(schemas)))
).pipe(
  Command.withDescription(
    "Print a record schema as Avro, TypeScript types, JSON Schema or CREATE TABLE (PostgreSQL, MySQL)"
  )
)

/** `UserSummary` → `user_summary`. */
const snakeCase = (name: string): string =>
  name
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2")
    .toLowerCase()

const schemaCommand = Command.make("schema").pipe(
  Command.withDescription("Inspect the Avro schemas (shipped ones and those of --schemas or ./schemas)"),
  Command.withSubcommands([schemaList, schemaShow])
)

const vaultFlag = Flag.String("file").pipe(
  Flag.withDescription("The vault file (default: $ETL_VAULT_FILE, else ~/.config/effect-etl/vault.json)"),
  Flag.withDefault("")
)

const vaultOptions = (file: string): Vault.VaultOptions => {
  const fromEnv = Vault.fromEnv()
  return file === "" ? fromEnv : { ...fromEnv, file }
}

const vaultFailure = (error: Vault.VaultError) =>
  Effect.andThen(Console.error(error.message), Effect.fail(new CliFailure({ message: error.message, exitCode: 1 })))

/** Secrets are read from standard input, never from the command line (which shells and `ps` would keep). */
const readStdin = Effect.tryPromise({
  try: async () => {
    const chunks: Array<Buffer> = []
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks)
      .toString("utf8")
      .replace(/\r?\n$/, "")
  },
  catch: () => new CliFailure({ message: "Cannot read the secret from standard input", exitCode: 2 })
})

const vaultSet = Command.make(
  "set",
  {
    name: Argument.String("name").pipe(Argument.withDescription('The secret\'s name, used as {"$secret": "name"}')),
    file: vaultFlag
  },
  ({ name, file }) =>
    Effect.gen(function* () {
      const value = yield* readStdin
      if (value === "")
        return yield* usage(
          'The secret is empty: pass it on standard input, e.g. `printf %s "$PW" | effect-etl vault set pg-password`'
        )
      yield* Effect.catchTag(Vault.set(vaultOptions(file), name, Redacted.make(value)), "VaultError", vaultFailure)
      yield* Console.log(`stored ${name}`)
    })
).pipe(Command.withDescription("Store a secret read from standard input (passphrase: $ETL_VAULT_PASSPHRASE)"))

const vaultList = Command.make("list", { file: vaultFlag }, ({ file }) =>
  Effect.gen(function* () {
    const names = yield* Effect.catchTag(Vault.list(vaultOptions(file)), "VaultError", vaultFailure)
    for (const name of names) yield* Console.log(name)
  })
).pipe(Command.withDescription("List the names of the secrets (never their values)"))

const vaultRemove = Command.make(
  "remove",
  { name: Argument.String("name").pipe(Argument.withDescription("The secret's name")), file: vaultFlag },
  ({ name, file }) =>
    Effect.gen(function* () {
      const removed = yield* Effect.catchTag(Vault.remove(vaultOptions(file), name), "VaultError", vaultFailure)
      yield* Console.log(removed ? `removed ${name}` : `no secret named ${name}`)
    })
).pipe(Command.withDescription("Remove a secret"))

const vaultCommand = Command.make("vault").pipe(
  Command.withDescription('Manage the encrypted credential vault that {"$secret": "name"} references read'),
  Command.withSubcommands([vaultSet, vaultList, vaultRemove])
)

/** `--log-format pretty|json`: how log lines on stderr are written (default: `$ETL_LOG_FORMAT`, else by terminal). */
export const LogFormat = GlobalFlag.Setting("log-format")({
  flag: Flag.Literals("log-format", Logging.formats).pipe(
    Flag.optional,
    Flag.withMetavar("<pretty|json>"),
    Flag.withDescription(
      "How logs on stderr are written: pretty (one line for a person, coloured on a terminal) or json (one JSON object per line). Default: $ETL_LOG_FORMAT, else pretty when stderr is a terminal and json otherwise"
    )
  )
})

/** The loggers of the format asked for; an unknown `$ETL_LOG_FORMAT` is bad usage. */
const logFormatLayer = Layer.unwrap(
  Effect.gen(function* () {
    const chosen = yield* LogFormat
    if (Option.isSome(chosen)) return Logging.layerFormat(chosen.value)
    const { format, invalid } = Logging.defaultFormat()
    if (invalid !== undefined)
      return yield* usage(`ETL_LOG_FORMAT is ${JSON.stringify(invalid)}: it must be ${Logging.formats.join(" or ")}`)
    return Logging.layerFormat(format)
  })
)

const makeRoot = (stop: GracefulStop | undefined) =>
  Command.make("effect-etl").pipe(
    Command.withDescription("Typed Extract-Transform-Load pipelines on Effect"),
    Command.withSubcommands([
      runCommand(stop),
      validateCommand,
      replayCommand,
      schemaCommand,
      vaultCommand,
      workerCommand
    ]),
    Command.provide(logFormatLayer),
    Command.withGlobalFlags([LogFormat])
  )

/** The root command. */
export const root = makeRoot(undefined)

/** Whether the arguments ask for debug logs (`--log-level debug`, `trace` or `all`): a defect then shows its trace. */
export const wantsTrace = (args: ReadonlyArray<string>): boolean => {
  let level: string | undefined
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--log-level") level = args[i + 1]
    else if (arg.startsWith("--log-level=")) level = arg.slice("--log-level=".length)
  }
  return level === "debug" || level === "trace" || level === "all"
}

/**
 * The one line a defect (a bug, not a failure the CLI knows: a thrown exception, a stack overflow) prints: what it
 * was, and how to see its trace. Never more than one line, never a stack trace.
 */
export const defectLine = (defect: unknown, trace: boolean): string => {
  const what = defect instanceof Error ? `${defect.name}: ${defect.message}` : messageOf(defect)
  const flat = what.replace(/\s+/g, " ").trim()
  const short = flat.length > 300 ? `${flat.slice(0, 297)}...` : flat
  return `effect-etl: unexpected error (${short}): a bug in effect-etl or in the pipeline's own code, not a problem with the config. ${
    trace ? "Its trace follows." : "Run again with --log-level debug to see its trace."
  }`
}

const reportDefect = (cause: Cause.Cause<unknown>, args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const secrets = yield* Redaction.Secrets
    const trace = wantsTrace(args)
    const defect = Cause.findDefect(cause)
    const line = defectLine(defect._tag === "Success" ? defect.success : Cause.squash(cause), trace)
    yield* Console.error(secrets.scrub(line))
    if (trace) yield* Console.error(secrets.scrub(Cause.pretty(cause)))
    return yield* Effect.fail(new CliFailure({ message: line, exitCode: 1 }))
  })

/**
 * Runs the CLI on the given arguments (without `node` and the script). With `stop`, streaming runs stop gracefully when
 * its signal completes. `secrets` is the registry of values to keep out of what it prints (one per invocation by
 * default; pass one to scrub with it outside too, e.g. in a last-resort crash handler).
 *
 * Exit codes: 0 ok, 1 the run failed or the CLI hit a defect (one line on stderr, the trace with
 * `--log-level debug`), 2 bad usage or a bad config.
 */
export const main = (
  args: ReadonlyArray<string>,
  version: string,
  options?: { readonly stop?: GracefulStop; readonly secrets?: Redaction.Registry }
) =>
  Command.runWith(options?.stop === undefined ? root : makeRoot(options.stop), { version })(args).pipe(
    Effect.catch((error) =>
      typeof error === "object" && error !== null && "_tag" in error && error._tag === "CliFailure"
        ? Effect.fail(error)
        : Effect.andThen(
            printError(messageOf(error)),
            Effect.fail(new CliFailure({ message: messageOf(error), exitCode: 2 }))
          )
    ),
    Effect.catchCause((cause) => (Cause.hasDies(cause) ? reportDefect(cause, args) : Effect.failCause(cause))),
    Effect.provideService(Redaction.Secrets, options?.secrets ?? Redaction.registry()),
    Effect.provide(Logging.layer())
  )
