/**
 * The cluster's layers over Node: runners talk over TCP sockets (`@effect/platform-node-shared`), the cluster's state
 * (runners, shard locks, messages, workflow results) and the runs' staging live in PostgreSQL (`@effect/sql-pg`).
 *
 * A runner (`effect-etl worker --cluster URL`) registers itself at `host:port`, takes its share of the shards and runs
 * the workflows of its shards. A submitter (`effect-etl run CONFIG --cluster URL`) is a client only: it sends a run
 * and waits for its result, and holds no shards.
 *
 * How fast the cluster notices a dead runner is set by `ShardingConfig`, from the environment in CONSTANT_CASE
 * (`SHARD_LOCK_EXPIRATION="20 seconds"`, `RUNNER_HEALTH_CHECK_INTERVAL`, `SHARDS_PER_GROUP`, ...), else by the defaults
 * below. `SHARDS_PER_GROUP` must be the same on every runner and submitter.
 */
import * as NodeClusterSocket from "@effect/platform-node-shared/NodeClusterSocket"
import * as NodeCrypto from "@effect/platform-node-shared/NodeCrypto"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as ClusterWorkflowEngine from "effect/cluster/ClusterWorkflowEngine"
import type * as MessageStorage from "effect/cluster/MessageStorage"
import * as RunnerAddress from "effect/cluster/RunnerAddress"
import * as RunnerHealth from "effect/cluster/RunnerHealth"
import type * as RunnerStorage from "effect/cluster/RunnerStorage"
import * as Runners from "effect/cluster/Runners"
import type { Sharding } from "effect/cluster/Sharding"
import * as ShardingConfig from "effect/cluster/ShardingConfig"
import * as SocketRunner from "effect/cluster/SocketRunner"
import * as SqlMessageStorage from "effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "effect/cluster/SqlRunnerStorage"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as RpcSerialization from "effect/rpc/RpcSerialization"
import type { SocketServerError } from "effect/socket/SocketServer"
import * as SqlStaging from "./SqlStaging.ts"

/** Where a runner can be reached by the other runners, and where it listens. */
export interface RunnerOptions {
  /** The address the other runners reach it at (default 127.0.0.1). */
  readonly host: string
  readonly port: number
  /** The address it listens on, when not `host` (e.g. 0.0.0.0 in a container). */
  readonly listenHost?: string | undefined
}

/** The cluster's storage and, for a runner, its address. */
export interface ClusterOptions {
  /** The PostgreSQL database of the cluster's state and the runs' staging (`postgres://user@host:5432/db`). */
  readonly url: Redacted.Redacted<string>
  /** Absent: a client only (a submitter). */
  readonly runner?: RunnerOptions | undefined
}

/**
 * Defaults for an ETL cluster, where a run lasts minutes and a dead runner should hand its parts on within about half
 * a minute: each applies unless the environment sets it.
 */
const defaults: ReadonlyArray<
  readonly [env: string, key: keyof ShardingConfig.ShardingConfig["Service"], value: string]
> = [
  ["SHARD_LOCK_EXPIRATION", "shardLockExpiration", "20 seconds"],
  ["SHARD_LOCK_REFRESH_INTERVAL", "shardLockRefreshInterval", "5 seconds"],
  ["RUNNER_HEALTH_CHECK_INTERVAL", "runnerHealthCheckInterval", "10 seconds"],
  ["ENTITY_MESSAGE_POLL_INTERVAL", "entityMessagePollInterval", "500 millis"],
  ["REFRESH_ASSIGNMENTS_INTERVAL", "refreshAssignmentsInterval", "2 seconds"]
]

const shardingConfig = (runner: RunnerOptions | undefined) => {
  const options: Record<string, unknown> = {
    runnerAddress: runner === undefined ? Option.none() : Option.some(RunnerAddress.make(runner.host, runner.port)),
    runnerListenAddress:
      runner?.listenHost === undefined ? Option.none() : Option.some(RunnerAddress.make(runner.listenHost, runner.port))
  }
  for (const [env, key, value] of defaults) if (process.env[env] === undefined) options[key] = value
  return Layer.orDie(ShardingConfig.layerFromEnv(options as Partial<ShardingConfig.ShardingConfig["Service"]>))
}

/** The transport of a runner: a socket server for the others' calls, and pings of the others' health. */
const runnerTransport = SocketRunner.layer.pipe(
  Layer.provide([NodeClusterSocket.layerSocketServer, NodeClusterSocket.layerClientProtocol]),
  Layer.provide(
    RunnerHealth.layerPing.pipe(Layer.provide(Runners.layerRpc), Layer.provide(NodeClusterSocket.layerClientProtocol))
  )
)

/** The transport of a client: it calls runners, and serves nothing. */
const clientTransport = SocketRunner.layerClientOnly.pipe(Layer.provide(NodeClusterSocket.layerClientProtocol))

/** The cluster's database cannot be reached (or refuses this user). */
export class ClusterStorageError extends Data.TaggedError("ClusterStorageError")<{ readonly message: string }> {}

/** The messages of an error and of its causes, each once. */
const causeText = (e: unknown): string => {
  const messages: Array<string> = []
  let current: unknown = e
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    const message = current instanceof Error ? current.message : typeof current === "string" ? current : ""
    if (message !== "" && !messages.some((m) => m.includes(message))) messages.push(message)
    current = (current as { readonly cause?: unknown }).cause
  }
  return messages.join(": ")
}

/**
 * Connects to the cluster's database once, so that a wrong URL or a database that is down fails with a message
 * before a runner starts or a run is submitted (`where` names the database without its password).
 */
export const probe = (url: Redacted.Redacted<string>, where: string): Effect.Effect<void, ClusterStorageError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const sql = yield* PgClient.make({ url, applicationName: "effect-etl cluster", maxConnections: 1 })
      yield* sql`SELECT 1`
    })
  ).pipe(
    Effect.provide(Reactivity.layer),
    Effect.timeout("20 seconds"),
    Effect.mapError(
      (e) => new ClusterStorageError({ message: `cannot reach the cluster's database ${where}: ${causeText(e)}` })
    )
  )

/** The PostgreSQL client of the cluster's storage. */
export const storage = (url: Redacted.Redacted<string>) =>
  PgClient.layer({ url, applicationName: "effect-etl cluster", maxConnections: 8 })

/**
 * The workflow engine on the cluster, the staging, and the SQL client of the storage. A runner's layer fails to build
 * when its port is taken; any layer dies when the storage cannot be reached.
 */
export const layer = (options: ClusterOptions) => {
  const transport: Layer.Layer<
    Sharding | Runners.Runners,
    SocketServerError,
    | MessageStorage.MessageStorage
    | RunnerStorage.RunnerStorage
    | ShardingConfig.ShardingConfig
    | RpcSerialization.RpcSerialization
  > = options.runner === undefined ? clientTransport : runnerTransport
  const sharding = transport.pipe(
    Layer.provideMerge(SqlMessageStorage.layer.pipe(Layer.provide(NodeCrypto.layerDigest))),
    Layer.provide(Layer.orDie(SqlRunnerStorage.layer)),
    Layer.provide(shardingConfig(options.runner)),
    Layer.provide(RpcSerialization.layerSchemaBinary())
  )
  const engine = ClusterWorkflowEngine.layer.pipe(Layer.provideMerge(sharding))
  return Layer.mergeAll(engine, Layer.orDie(SqlStaging.layer)).pipe(
    Layer.provideMerge(Layer.orDie(storage(options.url)))
  )
}
