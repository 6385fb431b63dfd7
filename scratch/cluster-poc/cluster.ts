/**
 * Shared definitions: workflows, activities, and the cluster layer composition
 * (socket transport + PostgreSQL storage) for runner and client processes.
 */
import * as NodeClusterSocket from "@effect/platform-node-shared/NodeClusterSocket"
import * as NodeCrypto from "@effect/platform-node-shared/NodeCrypto"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Duration, Effect, Layer, Option, Schema } from "effect"
import {
  ClusterWorkflowEngine,
  RunnerAddress,
  RunnerHealth,
  Runners,
  ShardingConfig,
  SocketRunner,
  SqlMessageStorage,
  SqlRunnerStorage
} from "effect/cluster"
import { RpcSerialization } from "effect/rpc"
import { Activity, Workflow } from "effect/workflow"

// ---------------------------------------------------------------------------
// logging helper (plain console so that lines are easy to grep in demo logs)
// ---------------------------------------------------------------------------
export const PORT = Number(process.env.RUNNER_PORT ?? 0)
export const say = (msg: string) =>
  Effect.sync(() => console.log(`${new Date().toISOString()} [pid=${process.pid} port=${PORT || "client"}] ${msg}`))

// ---------------------------------------------------------------------------
// schemas
// ---------------------------------------------------------------------------
export const PartResult = Schema.Struct({
  part: Schema.String,
  pid: Schema.Number,
  port: Schema.Number,
  startedAt: Schema.String,
  finishedAt: Schema.String
})
export type PartResult = typeof PartResult.Type

export class PartError extends Schema.TaggedError<PartError>()("PartError", {
  part: Schema.String,
  message: Schema.String
}) {}

export const JobSummary = Schema.Struct({
  runId: Schema.String,
  results: Schema.Array(PartResult),
  committedBy: Schema.Struct({ pid: Schema.Number, port: Schema.Number }),
  workflowRanOn: Schema.Struct({ pid: Schema.Number, port: Schema.Number })
})

const JobPayload = {
  runId: Schema.String,
  parts: Schema.Array(Schema.String),
  // demo knob: how long each part sleeps
  sleepMs: Schema.optional(Schema.Number),
  // demo knob: run the parts one after another (to measure per-activity overhead)
  sequential: Schema.optional(Schema.Boolean)
}

// ---------------------------------------------------------------------------
// workflows
// ---------------------------------------------------------------------------

/** Variant A: one Activity per part, inside a single workflow execution. */
export const Job = Workflow.make("Job", {
  payload: JobPayload,
  success: JobSummary,
  error: PartError,
  idempotencyKey: (p) => p.runId
})

/** Variant B: every part is its own child workflow (own execution id => own shard). */
export const FanoutJob = Workflow.make("FanoutJob", {
  payload: JobPayload,
  success: JobSummary,
  error: PartError,
  idempotencyKey: (p) => p.runId
})

export const Part = Workflow.make("Part", {
  payload: { runId: Schema.String, part: Schema.String, sleepMs: Schema.optional(Schema.Number) },
  success: PartResult,
  error: PartError,
  idempotencyKey: (p) => `${p.runId}/${p.part}`
})

/** The activity that does the real work of a part. */
const partActivity = (runId: string, part: string, sleepMs: number) =>
  Activity.make({
    name: `part-${part}`,
    success: PartResult,
    error: PartError,
    execute: Effect.gen(function*() {
      const attempt = yield* Activity.CurrentAttempt
      const startedAt = new Date().toISOString()
      yield* say(`START part=${part} run=${runId} attempt=${attempt}`)
      if (sleepMs > 0) yield* Effect.sleep(Duration.millis(sleepMs))
      if (part.startsWith("fail")) {
        yield* say(`FAIL  part=${part} run=${runId}`)
        return yield* new PartError({ part, message: "simulated failure" })
      }
      yield* say(`END   part=${part} run=${runId}`)
      return { part, pid: process.pid, port: PORT, startedAt, finishedAt: new Date().toISOString() }
    })
  })

const commitActivity = (runId: string, n: number) =>
  Activity.make({
    name: "commit",
    success: Schema.Struct({ pid: Schema.Number, port: Schema.Number }),
    execute: Effect.gen(function*() {
      yield* say(`COMMIT run=${runId} parts=${n}`)
      return { pid: process.pid, port: PORT }
    })
  })

export const JobLayer = Job.toLayer(Effect.fnUntraced(function*(payload, executionId) {
  yield* say(`WORKFLOW Job run=${payload.runId} executionId=${executionId} (re)started`)
  const sleepMs = payload.sleepMs ?? 3000
  const results = yield* Effect.forEach(
    payload.parts,
    (part) => partActivity(payload.runId, part, sleepMs),
    { concurrency: payload.sequential ? 1 : "unbounded" }
  )
  const committedBy = yield* commitActivity(payload.runId, results.length)
  return { runId: payload.runId, results, committedBy, workflowRanOn: { pid: process.pid, port: PORT } }
}))

export const PartLayer = Part.toLayer(Effect.fnUntraced(function*(payload, executionId) {
  yield* say(`WORKFLOW Part run=${payload.runId} part=${payload.part} executionId=${executionId} (re)started`)
  return yield* partActivity(payload.runId, payload.part, payload.sleepMs ?? 3000)
}))

export const FanoutJobLayer = FanoutJob.toLayer(Effect.fnUntraced(function*(payload, executionId) {
  yield* say(`WORKFLOW FanoutJob run=${payload.runId} executionId=${executionId} (re)started`)
  const results = yield* Effect.forEach(
    payload.parts,
    (part) => Part.execute({ runId: payload.runId, part, sleepMs: payload.sleepMs }),
    { concurrency: payload.sequential ? 1 : "unbounded" }
  )
  const committedBy = yield* commitActivity(payload.runId, results.length)
  return { runId: payload.runId, results, committedBy, workflowRanOn: { pid: process.pid, port: PORT } }
}))

export const WorkflowsLayer = Layer.mergeAll(JobLayer, PartLayer, FanoutJobLayer)

// ---------------------------------------------------------------------------
// cluster layer: socket transport + PostgreSQL storage
// ---------------------------------------------------------------------------
export const PgLive = PgClient.layer({
  host: "127.0.0.1",
  port: 5432,
  username: "root",
  database: process.env.PG_DATABASE ?? "cluster_poc"
})

// POC defaults for the failover knobs; each can be overridden from the
// environment (ShardingConfig.layerFromEnv reads CONSTANT_CASE variables such
// as SHARD_LOCK_EXPIRATION="35 seconds", RUNNER_HEALTH_CHECK_INTERVAL="1 minute").
// Library defaults: 35s / 10s / 1 min / 10s / 3s / 300 shards.
const envDefaults: Record<string, string> = {
  SHARDS_PER_GROUP: "30", // must be identical on every runner (and client)
  SHARD_LOCK_EXPIRATION: "10 seconds",
  SHARD_LOCK_REFRESH_INTERVAL: "3 seconds",
  RUNNER_HEALTH_CHECK_INTERVAL: "5 seconds",
  ENTITY_MESSAGE_POLL_INTERVAL: "2 seconds",
  REFRESH_ASSIGNMENTS_INTERVAL: "1 second",
  ENTITY_REPLY_POLL_INTERVAL: "200 millis"
}
for (const [k, v] of Object.entries(envDefaults)) process.env[k] ??= v

/** Runner: serves runner RPCs on a TCP socket server, pings peers for health. */
const RunnerTransport = SocketRunner.layer.pipe(
  Layer.provide([NodeClusterSocket.layerSocketServer, NodeClusterSocket.layerClientProtocol]),
  Layer.provide(
    RunnerHealth.layerPing.pipe(
      Layer.provide(Runners.layerRpc),
      Layer.provide(NodeClusterSocket.layerClientProtocol)
    )
  )
)

/** Client only: no socket server, never registered in cluster_runners, holds no shards. */
const ClientTransport = SocketRunner.layerClientOnly.pipe(
  Layer.provide(NodeClusterSocket.layerClientProtocol)
)

const withStorage = <A, E, R>(
  transport: Layer.Layer<A, E, R>,
  runnerAddress: Option.Option<RunnerAddress.RunnerAddress>
) =>
  transport.pipe(
    // MessageStorage is also needed by ClusterWorkflowEngine, hence provideMerge
    Layer.provideMerge(SqlMessageStorage.layer.pipe(Layer.provide(NodeCrypto.layerDigest))),
    Layer.provide(Layer.orDie(SqlRunnerStorage.layer)),
    // NB: layerFromEnv would also read HOST / PORT for runnerAddress; we set it explicitly.
    Layer.provide(Layer.orDie(ShardingConfig.layerFromEnv({ runnerAddress }))),
    Layer.provide(RpcSerialization.layerSchemaBinary()),
    Layer.provide(Layer.orDie(PgLive))
  )

export const makeClusterLayer = (options: { readonly clientOnly: true } | { readonly clientOnly: false; readonly port: number }) =>
  options.clientOnly
    ? withStorage(ClientTransport, Option.none())
    : withStorage(RunnerTransport, Option.some(RunnerAddress.make("127.0.0.1", options.port)))

/** WorkflowEngine on top of the cluster (needed by runners AND clients). */
export const makeWorkflowEngineLayer = (options: Parameters<typeof makeClusterLayer>[0]) =>
  ClusterWorkflowEngine.layer.pipe(Layer.provideMerge(makeClusterLayer(options)))
