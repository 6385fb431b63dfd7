/**
 * The streaming pipeline of issue 11 at saturation: Kafka (JSON) → validate → filter (drops 10 %) → PostgreSQL upsert
 * by id, exactly once (offsets table), beside a raw consumer of the same Kafka client reading the same topic in the same
 * run. Phases:
 *
 * 1. a topic of 4 partitions filled with `BENCH_RECORDS` events (default 1,000,000) before anything reads it, so the
 *    reader is offered more than it can take;
 * 2. the raw consumer (the `KafkaClient` contract's `consume`, counting messages and bytes) reads it all;
 * 3. the pipeline in this process reads it all into a fresh table: records/s and the ratio to the raw consumer;
 * 4. the same pipeline as 1, 2 and 3 CLI processes in one consumer group (`effect-etl run CONFIG`), each into a fresh
 *    table: records/s from the first start to the last row;
 * 5. latency: a producer offering `BENCH_RATE` events/s (default 100,000) for `BENCH_SECONDS` (default 10) while one
 *    pipeline (a CLI process, commit interval `BENCH_LATENCY_COMMIT_INTERVAL`, default 250 ms) reads them: the
 *    end-to-end latency percentiles of its RunReport (commit − Kafka timestamp).
 *
 *   node bench/kafka-postgres.ts                  # writes bench/results/kafka-postgres.json
 *   BENCH_RECORDS=200000 BENCH_PROCESSES=1,2 node bench/kafka-postgres.ts
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Kafka from "../src/connectors/kafka/Kafka.ts"
import { fetchedOnly, KafkaClient } from "../src/connectors/kafka/KafkaClient.ts"
import * as NodeKafka from "../src/connectors/kafka/NodeKafka.ts"
import * as NodePostgres from "../src/connectors/postgres/NodePostgres.ts"
import * as Postgres from "../src/connectors/postgres/Postgres.ts"
import * as RecordSchema from "../src/core/RecordSchema.ts"
import { StopSignal } from "../src/core/Stop.ts"
import * as Pipeline from "../src/pipeline/Pipeline.ts"
import * as Rule from "../src/transforms/Rule.ts"
import * as KafkaBroker from "../test/support/KafkaBroker.ts"

const root = nodePath.resolve(import.meta.dirname, "..")
const records = Number(process.env.BENCH_RECORDS ?? 1_000_000)
const rate = Number(process.env.BENCH_RATE ?? 100_000)
const seconds = Number(process.env.BENCH_SECONDS ?? 10)
const processCounts = (process.env.BENCH_PROCESSES ?? "1,2,3").split(",").map(Number)
const latencyCommitInterval = process.env.BENCH_LATENCY_COMMIT_INTERVAL ?? "250 millis"
const pgUrl = process.env.ETL_TEST_PG_URL ?? "postgres://root@127.0.0.1:5432/test"
const kept = (n: number) => n - Math.ceil(n / 10)

const Event = Schema.Struct({ id: Schema.Number, userId: Schema.String, kind: Schema.String, amount: Schema.Number })
type Event = typeof Event.Type

const encoder = new TextEncoder()
const eventBytes = (i: number) =>
  encoder.encode(
    JSON.stringify({ id: i, userId: `user-${i % 5000}`, kind: i % 10 === 0 ? "heartbeat" : "click", amount: i % 997 })
  )

const broker = await KafkaBroker.start()
const brokers = broker.brokers.split(",")
const kafka = NodeKafka.layer({ brokers })
const schema = `bench_kp_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`
const admin = { url: Redacted.make(pgUrl) }
const db = { url: Redacted.make(pgUrl), schema }
const sql = (text: string) => Effect.runPromise(NodePostgres.execute(db, text))
const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-bench-kp-"))

/** Produces `from..to` (exclusive) in requests of 5,000, spread over the partitions by key. */
const fill = (topic: string, from: number, to: number) =>
  Effect.gen(function* () {
    const producer = yield* KafkaClient.use((c) => c.producer({ compression: "none" }))
    for (let start = from; start < to; start += 5000) {
      const messages = []
      for (let i = start; i < Math.min(to, start + 5000); i++)
        messages.push({ key: encoder.encode(String(i)), value: eventBytes(i) })
      yield* producer.send(topic, messages)
    }
  }).pipe(Effect.scoped, Effect.provide(kafka))

const table = async (name: string) => {
  await sql(
    `CREATE TABLE ${name} (id bigint PRIMARY KEY, "userId" text NOT NULL, kind text NOT NULL, amount double precision NOT NULL)`
  )
  return name
}
const countOf = async (name: string) => Number((await sql(`SELECT count(*) AS n FROM ${name}`))[0]!.n)

const pipeline = (topic: string, target: string, stop: Effect.Effect<void>) =>
  Pipeline.from(
    Kafka.source<Event>({
      topics: [topic],
      groupId: `bench-${target}`,
      start: "earliest",
      bounded: false,
      value: { type: "json" },
      schema: RecordSchema.fromSchema(Event)
    })
  ).pipe(
    Pipeline.validate([Rule.notNull("userId"), Rule.range("amount", { min: 0 })]),
    Pipeline.filter((e: Event) => e.kind !== "heartbeat"),
    Pipeline.to(Postgres.table(target, Event, { mode: "upsert", keys: ["id"] })),
    Pipeline.named(`bench-${target}`),
    Pipeline.withStreaming({ commitInterval: "1 second", commitRecords: 200_000 }),
    Pipeline.run,
    Effect.provideService(StopSignal, stop),
    Effect.provideService(References.MinimumLogLevel, "Warn"),
    Effect.provide(Layer.merge(kafka, NodePostgres.layer(db)))
  )

/** Runs the pipeline in this process until `expected` rows are in `target`; seconds from start to the last row. */
const inProcess = async (topic: string, target: string, expected: number) => {
  const started = performance.now()
  let finished = 0
  const report = await Effect.runPromise(
    Effect.gen(function* () {
      const stop = yield* Deferred.make<void>()
      const fiber = yield* Effect.forkChild(pipeline(topic, target, Deferred.await(stop)))
      yield* Effect.promise(async () => {
        while ((await countOf(target)) < expected) await new Promise((r) => setTimeout(r, 100))
        finished = performance.now()
      })
      yield* Deferred.succeed(stop, undefined)
      return yield* Fiber.join(fiber)
    })
  )
  return { seconds: (finished - started) / 1000, report }
}

/** A CLI config of the pipeline (`effect-etl run CONFIG`), written to a file: its path. */
const cliConfig = (name: string, topic: string, target: string, commitInterval: string) => {
  const config = nodePath.join(dir, `${name}.json`)
  fs.writeFileSync(
    config,
    JSON.stringify({
      name: `bench-${name}-${topic}`,
      mode: "streaming",
      streaming: { commit_interval: commitInterval, commit_records: 200000, state: { type: "none" } },
      connections: {
        events: { type: "kafka", brokers },
        db: { type: "postgres", url: pgUrl, schema }
      },
      source: {
        type: "kafka",
        connection: "events",
        topics: [topic],
        group_id: `bench-${name}-${topic}`,
        start: "earliest",
        value: { type: "json" }
      },
      transforms: [
        {
          type: "validate",
          rules: [
            { rule: "not_null", field: "userId" },
            { rule: "range", field: "amount", min: 0 }
          ]
        },
        { type: "filter", condition: 'kind != "heartbeat"' }
      ],
      sink: { type: "postgres", connection: "db", table: target, mode: "upsert", keys: ["id"] }
    })
  )
  return config
}

const result: Record<string, unknown> = { node: process.version, records, cpus: os.cpus().length }
const children: Array<ChildProcess> = []
try {
  await Effect.runPromise(NodePostgres.execute(admin, `CREATE SCHEMA "${schema}"`))
  const topic = `bench-kp-${crypto.randomUUID().slice(0, 8)}`
  await Effect.runPromise(KafkaClient.use((c) => c.createTopic(topic, { partitions: 4 })).pipe(Effect.provide(kafka)))
  let t = performance.now()
  await Effect.runPromise(fill(topic, 0, records))
  console.log(`filled ${topic}: ${records} events in ${((performance.now() - t) / 1000).toFixed(1)} s`)

  // 2. the raw consumer
  t = performance.now()
  const raw = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const client = yield* KafkaClient
        const offsets = yield* client.partitionOffsets(topic)
        const consumer = yield* client.consume({
          groupId: `bench-raw-${topic}`,
          topics: [topic],
          seeks: offsets.map((p) => ({ topic, partition: p.partition, offset: p.low }))
        })
        let n = 0
        let bytes = 0
        yield* fetchedOnly(consumer.batches).pipe(
          Stream.takeUntil((batch) => {
            n += batch.messages.length
            for (const m of batch.messages) bytes += m.value?.length ?? 0
            return n >= records
          }),
          Stream.runDrain
        )
        yield* consumer.close
        return { n, bytes }
      })
    ).pipe(Effect.provide(kafka))
  )
  const rawSeconds = (performance.now() - t) / 1000
  const rawRate = Math.round(raw.n / rawSeconds)
  console.log(
    `raw consumer: ${raw.n} messages (${(raw.bytes / 1e6).toFixed(0)} MB) in ${rawSeconds.toFixed(1)} s = ${rawRate}/s`
  )
  result.raw = { messages: raw.n, seconds: rawSeconds, perSecond: rawRate }

  // 3. the pipeline in this process
  const one = await inProcess(topic, await table("in_process"), kept(records))
  const pipeRate = Math.round(records / one.seconds)
  console.log(
    `pipeline (1 process, in this process): ${records} read, ${one.report.records.written} written in ${one.seconds.toFixed(1)} s = ${pipeRate}/s = ${(pipeRate / rawRate).toFixed(2)} × the raw consumer`
  )
  result.pipeline = {
    seconds: one.seconds,
    perSecond: pipeRate,
    ratioToRaw: pipeRate / rawRate,
    written: one.report.records.written
  }

  // 4. 1, 2, 3 processes in one group
  const groups: Array<Record<string, unknown>> = []
  for (const n of processCounts) {
    const target = await table(`group_${n}`)
    const config = cliConfig(`group-${n}`, topic, target, "1 second")
    const started = performance.now()
    const errors: Array<string> = []
    const procs = Array.from({ length: n }, (_, i) => {
      const child = spawn(process.execPath, [nodePath.join(root, "src/main.ts"), "run", config, "--quiet"], {
        cwd: root,
        env: { ...process.env, ETL_INSTANCE_ID: `bench-${n}-${i}` },
        stdio: ["ignore", "ignore", "pipe"]
      })
      errors[i] = ""
      child.stderr!.on("data", (chunk: Buffer) => {
        errors[i] = (errors[i] + chunk.toString("utf8")).slice(-4000)
      })
      children.push(child)
      return child
    })
    // A phase that does not finish says why (the processes' last words) instead of waiting for ever.
    while ((await countOf(target)) < kept(records)) {
      if (performance.now() - started > 300_000)
        throw new Error(`${n} process(es) did not write every row in 5 minutes:\n${errors.join("\n---\n")}`)
      await new Promise((r) => setTimeout(r, 200))
    }
    const secs = (performance.now() - started) / 1000
    for (const child of procs) child.kill("SIGINT")
    await Promise.all(procs.map((c) => new Promise((r) => (c.exitCode === null ? c.once("exit", r) : r(undefined)))))
    const perSecond = Math.round(records / secs)
    console.log(
      `${n} process(es) in one group: ${secs.toFixed(1)} s from start to the last row = ${perSecond}/s (${(perSecond / rawRate).toFixed(2)} × raw)`
    )
    groups.push({ processes: n, seconds: secs, perSecond, ratioToRaw: perSecond / rawRate })
  }
  result.groups = groups

  // 5. latency at an offered rate
  const live = `bench-kp-live-${crypto.randomUUID().slice(0, 8)}`
  await Effect.runPromise(KafkaClient.use((c) => c.createTopic(live, { partitions: 4 })).pipe(Effect.provide(kafka)))
  const total = rate * seconds
  const target = await table("latency")
  // The pipeline runs as a CLI process of its own, as users run it: the producer here does not share its thread.
  const child = spawn(
    process.execPath,
    [nodePath.join(root, "src/main.ts"), "run", cliConfig("latency", live, target, latencyCommitInterval), "--quiet"],
    { cwd: root, env: { ...process.env, ETL_INSTANCE_ID: "bench-latency" }, stdio: ["ignore", "pipe", "ignore"] }
  )
  children.push(child)
  let stdout = ""
  child.stdout!.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8")
  })
  const exited = new Promise((r) => child.once("exit", r))
  const latency = await Effect.runPromise(
    Effect.gen(function* () {
      // Time to start and join the group.
      yield* Effect.sleep("4 seconds")
      const started = performance.now()
      // 20 slices per second, each one request.
      const perSlice = Math.ceil(rate / 20)
      yield* Effect.scoped(
        Effect.gen(function* () {
          const producer = yield* KafkaClient.use((c) => c.producer({ compression: "none" }))
          // Slices are sent without waiting for the one before (up to 8 in flight), so that a slow acknowledgement
          // does not lower the offered rate.
          const inFlight: Array<Fiber.Fiber<void, unknown>> = []
          for (let slice = 0, sent = 0; sent < total; slice++) {
            const wait = started + slice * 50 - performance.now()
            if (wait > 0) yield* Effect.sleep(`${Math.round(wait)} millis`)
            const messages = []
            for (let i = sent; i < Math.min(total, sent + perSlice); i++)
              messages.push({ key: encoder.encode(String(i)), value: eventBytes(i) })
            inFlight.push(yield* Effect.forkChild(producer.send(live, messages)))
            if (inFlight.length > 8) yield* Fiber.join(inFlight.shift()!)
            sent += messages.length
          }
          for (const fiber of inFlight) yield* Fiber.join(fiber)
        })
      ).pipe(Effect.provide(kafka))
      const offered = total / ((performance.now() - started) / 1000)
      yield* Effect.promise(async () => {
        while ((await countOf(target)) < kept(total)) await new Promise((r) => setTimeout(r, 100))
      })
      child.kill("SIGINT")
      yield* Effect.promise(() => exited)
      const report = JSON.parse(stdout) as { streaming?: { latencyMs?: Record<string, number> } }
      return {
        offered: Math.round(offered),
        commitInterval: latencyCommitInterval,
        latencyMs: report.streaming?.latencyMs
      }
    })
  )
  console.log(
    `latency at ${latency.offered} events/s offered (commit interval ${latencyCommitInterval}): p50 ${latency.latencyMs?.p50} ms, p95 ${latency.latencyMs?.p95} ms, max ${latency.latencyMs?.max} ms`
  )
  result.latency = latency
  fs.mkdirSync(nodePath.join(root, "bench", "results"), { recursive: true })
  fs.writeFileSync(
    nodePath.join(root, "bench", "results", "kafka-postgres.json"),
    `${JSON.stringify(result, null, 2)}\n`
  )
} finally {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL")
  await Effect.runPromise(Effect.ignore(NodePostgres.execute(admin, `DROP SCHEMA "${schema}" CASCADE`)))
  fs.rmSync(dir, { recursive: true, force: true })
  await broker.stop()
}
