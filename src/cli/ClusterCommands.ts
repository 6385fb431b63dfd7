/**
 * The cluster's side of the command line: `worker --cluster URL` starts a runner, and `run CONFIG --cluster URL`
 * (see `Cli.ts`) submits a run to the runners and waits for its report.
 */
import * as nodePath from "node:path"
import * as Console from "effect/Console"
import { Command, Flag } from "effect/cli"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import * as Cluster from "../cluster/Cluster.ts"
import * as Load from "../config/Load.ts"
import * as Source from "../core/Source.ts"
import * as Redaction from "../secrets/Redaction.ts"
import { CliFailure, configFailure, loadConfigText, printError, schemasFlag, services, usage } from "./Shared.ts"

/** `--cluster`: the cluster's PostgreSQL database. */
export const clusterFlag = Flag.String("cluster").pipe(
  Flag.withDescription(
    "The PostgreSQL database of a cluster (postgres://user@host:5432/db): its runners, shard locks, workflow state and the runs' staging live there"
  )
)

/** The cluster's driver (PostgreSQL storage, sockets), loaded by the cluster commands only: other commands start faster. */
const nodeCluster = Effect.promise(() => import("../cluster/NodeCluster.ts"))

/** The cluster URL, with its password kept out of every log line and error. */
const clusterUrl = (url: string) =>
  Effect.gen(function* () {
    const parsed = URL.canParse(url) ? new URL(url) : undefined
    const password = parsed === undefined ? "" : decodeURIComponent(parsed.password)
    if (password !== "") (yield* Redaction.Secrets).add([password])
    if (parsed === undefined || !/^postgres(ql)?:$/.test(parsed.protocol))
      return yield* usage(
        `--cluster must be a PostgreSQL URL (postgres://user@host:5432/db), got ${parsed === undefined ? "text that is not a URL" : `a ${parsed.protocol}// URL`}`
      )
    const redacted = Redacted.make(url)
    const where = `${parsed.hostname}:${parsed.port === "" ? "5432" : parsed.port}${parsed.pathname}`
    // A database that cannot be reached fails here, with a message, before anything starts.
    const NodeCluster = yield* nodeCluster
    yield* NodeCluster.probe(redacted, where).pipe(
      Effect.catchTag("ClusterStorageError", (e) =>
        Effect.andThen(printError(e.message), Effect.fail(new CliFailure({ message: e.message, exitCode: 1 })))
      )
    )
    return redacted
  })

/** Runners (and submitters) load a run's pipeline from the config text it carries. */
export const pipelines = Layer.succeed(Cluster.Pipelines, {
  load: (request) =>
    loadConfigText(request.file, request.text, request.schemas).pipe(
      Effect.map(({ pipeline, connections }) => ({
        pipeline,
        layer: Layer.merge(services(request.schemas), connections) as Layer.Layer<unknown>
      })),
      Effect.mapError(
        (error) =>
          new Cluster.RunFailure({
            tag: error._tag,
            stage: "config",
            message: `${request.file} (as this runner loads it): ${error.message}`,
            retryable: false
          })
      )
    )
})

/** `effect-etl worker --cluster URL`: a runner, until SIGINT/SIGTERM (which hands its work on). */
export const workerCommand = Command.make(
  "worker",
  {
    cluster: clusterFlag,
    host: Flag.String("host").pipe(
      Flag.withDescription("The address the other runners and submitters reach this runner at (default 127.0.0.1)"),
      Flag.withDefault("127.0.0.1")
    ),
    port: Flag.Int("port").pipe(
      Flag.withDescription("The TCP port this runner listens on (default 34431; one per runner on a machine)"),
      Flag.withDefault(34431)
    ),
    listenHost: Flag.String("listen-host").pipe(
      Flag.withDescription("The address to listen on when it is not --host (e.g. 0.0.0.0 in a container)"),
      Flag.optional
    ),
    schemas: schemasFlag
  },
  Effect.fn("cli.worker")(function* ({ cluster, host, port, listenHost }) {
    const url = yield* clusterUrl(cluster)
    const runner = { host, port, listenHost: Option.getOrUndefined(listenHost) }
    const NodeCluster = yield* nodeCluster
    const layer = Cluster.layerWorkflows.pipe(
      Layer.provide(pipelines),
      Layer.provide(NodeCluster.layer({ url, runner }))
    )
    yield* Effect.logInfo(`runner starting at ${host}:${port}`)
    yield* Effect.scoped(
      Effect.gen(function* () {
        yield* Layer.build(layer)
        yield* Effect.logInfo(`runner ready at ${host}:${port}: taking its share of the shards`)
        return yield* Effect.never
      })
    ).pipe(
      Effect.catchTag("SocketServerError", (e) =>
        usage(`cannot listen on ${runner.listenHost ?? host}:${port}: ${e.message} (another runner there?)`)
      )
    )
  })
).pipe(
  Command.withDescription(
    "Start a cluster runner: it runs the parts of the runs submitted with `run --cluster`, until SIGINT/SIGTERM"
  )
)

/** A submission waits for runners: it says so when none is registered. */
const warnWithoutRunners = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM cluster_runners WHERE healthy`.pipe(
    Effect.orElseSucceed(() => [{ n: 1 }])
  )
  if ((rows[0]?.n ?? 0) === 0)
    yield* Effect.logWarning(
      "no runner is registered in the cluster: the run waits until one starts (effect-etl worker --cluster URL)"
    )
})

/** Logs how many parts of the run are read (of how many, once the run is planned), every few seconds. */
const followParts = (runId: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    let last = ""
    yield* Effect.repeat(
      Effect.gen(function* () {
        const rows = yield* sql<{ readonly n: number; readonly total: number | null }>`SELECT
            (SELECT count(*)::int FROM etl_staged WHERE run_id = ${runId} AND kind = 'records') AS n,
            (SELECT parts FROM etl_runs WHERE run_id = ${runId}) AS total`.pipe(Effect.orElseSucceed(() => []))
        const row = rows[0]
        if (row === undefined || (row.n === 0 && row.total === null)) return
        const line = row.total === null ? `${row.n} parts read` : `${row.n} of ${row.total} parts read`
        if (line !== last) yield* Effect.logInfo(`run ${runId}: ${line}`)
        last = line
      }),
      Schedule.spaced(Duration.seconds(2))
    )
  })

/**
 * Submits a run of a JSON config to the cluster and waits for it: prints its RunReport, fails when it failed. The same
 * run id again waits for that run (or returns its result), without redoing what it finished.
 */
export const submit = (options: {
  readonly target: string
  readonly cluster: string
  readonly runId: string | undefined
  readonly schemas: string
  readonly partBytes: number
}) =>
  Effect.gen(function* () {
    const url = yield* clusterUrl(options.cluster)
    const text = yield* Effect.catchTag(Load.readText(options.target), "ConfigError", configFailure)
    // Checked here first, so that a bad config fails before it reaches the runners.
    const local = yield* Effect.catchTag(
      loadConfigText(options.target, text, options.schemas),
      "ConfigError",
      configFailure
    )
    if (!local.pipeline.bounded)
      return yield* usage(
        `${options.target} is a streaming pipeline: it scales through its Kafka consumer group, not a cluster; run it with \`run\` (without --cluster) on each machine, with the same group_id`
      )
    const request: Cluster.RunRequest = {
      runId: options.runId ?? crypto.randomUUID(),
      file: nodePath.resolve(options.target),
      text,
      schemas: options.schemas,
      partBytes: options.partBytes
    }
    yield* Effect.logInfo(`submitting run ${request.runId} of ${local.pipeline.name} to the cluster`)
    const outcome = yield* Effect.scoped(
      Effect.gen(function* () {
        yield* warnWithoutRunners
        yield* Effect.forkScoped(followParts(request.runId))
        return yield* Cluster.EtlRun.execute(request)
      })
    ).pipe(Effect.provide((yield* nodeCluster).layer({ url })))
    const secrets = yield* Redaction.Secrets
    if (outcome.report !== null) yield* Console.log(secrets.scrub(JSON.stringify(JSON.parse(outcome.report), null, 2)))
    if (outcome.error !== null) {
      const message = `run ${request.runId} failed in ${outcome.error.stage}: ${outcome.error.message}`
      yield* printError(message)
      return yield* Effect.fail(new CliFailure({ message, exitCode: 1 }))
    }
  })

/** `--part-bytes`: the target size of a part of files or objects. */
export const partBytesFlag = Flag.Int("part-bytes").pipe(
  Flag.withDescription(
    `Files and objects are grouped into parts of about this many bytes (default: ${Source.defaultSplit.targetBytes}, 64 MiB, on a cluster; on threads, about four parts per thread of 8 to 128 MiB)`
  ),
  Flag.optional
)
