/**
 * The streaming benchmark: events produced into a 4-partition Kafka topic at a steady rate (default 50,000 events/s
 * for 20 s, by a separate producer process using kafkajs) while a streaming pipeline consumes them: Kafka source (JSON
 * decode) → validate → filter (drops 10 %) → file sink (JSON lines, append) committing every second. It reports the
 * sustained events/s from the first event produced to the commit that made the last one visible, and the end-to-end
 * latency percentiles of the RunReport (commit time − the batch's oldest Kafka message timestamp). The broker is the
 * test broker (`test/support/KafkaBroker.ts`), or yours via `ETL_TEST_KAFKA_BROKERS`.
 *
 *   node bench/streaming.ts                                  # writes bench/results/streaming.json
 *   BENCH_RATE=20000 BENCH_SECONDS=10 node bench/streaming.ts
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { CompressionTypes, Kafka as KafkaJs, logLevel } from "kafkajs"
import * as File from "../src/connectors/file/File.ts"
import * as NodeFileStore from "../src/connectors/file/NodeFileStore.ts"
import * as Kafka from "../src/connectors/kafka/Kafka.ts"
import * as NodeKafka from "../src/connectors/kafka/NodeKafka.ts"
import * as Sink from "../src/core/Sink.ts"
import { StopSignal } from "../src/core/Stop.ts"
import * as Pipeline from "../src/pipeline/Pipeline.ts"
import * as Rule from "../src/transforms/Rule.ts"
import * as KafkaBroker from "../test/support/KafkaBroker.ts"

const root = nodePath.resolve(import.meta.dirname, "..")
const rate = Number(process.env.BENCH_RATE ?? 50_000)
const seconds = Number(process.env.BENCH_SECONDS ?? 20)
const total = rate * seconds
const expectedWritten = total - Math.ceil(total / 10)

interface Event {
  readonly id: number
  readonly userId: string
  readonly kind: string
  readonly amount: number
}

/** The producer process: `rate` events/s in 20 slices per second, each slice one `sendBatch` over the partitions. */
const produce = async (brokers: string, topic: string): Promise<void> => {
  const kafka = new KafkaJs({ brokers: [brokers], logLevel: logLevel.NOTHING })
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  const perSlice = Math.ceil(rate / 20)
  const started = performance.now()
  let sent = 0
  for (let slice = 0; sent < total; slice++) {
    const due = started + slice * 50
    const wait = due - performance.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    const n = Math.min(perSlice, total - sent)
    const byPartition: Array<Array<{ value: string }>> = [[], [], [], []]
    for (let i = sent; i < sent + n; i++) {
      const event: Event = {
        id: i,
        userId: `user-${i % 5000}`,
        kind: i % 10 === 0 ? "heartbeat" : "click",
        amount: i % 997
      }
      byPartition[i % 4]!.push({ value: JSON.stringify(event) })
    }
    await producer.sendBatch({
      compression: CompressionTypes.None,
      topicMessages: [
        { topic, messages: byPartition.flatMap((messages, partition) => messages.map((m) => ({ ...m, partition }))) }
      ]
    })
    sent += n
  }
  const elapsed = (performance.now() - started) / 1000
  await producer.disconnect()
  console.log(JSON.stringify({ produced: sent, seconds: elapsed }))
}

if (process.argv[2] === "produce") {
  await produce(process.env.BENCH_BROKERS!, process.env.BENCH_TOPIC!)
  process.exit(0)
}

const broker = await KafkaBroker.start()
const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-bench-stream-"))
try {
  const topic = `bench-stream-${crypto.randomUUID().slice(0, 8)}`
  const admin = new KafkaJs({ brokers: [broker.brokers], logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true })
  await admin.disconnect()

  let producerStarted = 0
  let producerResult: { produced: number; seconds: number } | undefined
  const startProducer = () =>
    new Promise<void>((resolve, reject) => {
      producerStarted = performance.now()
      const child = spawn(process.execPath, [import.meta.filename, "produce"], {
        env: { ...process.env, BENCH_BROKERS: broker.brokers, BENCH_TOPIC: topic },
        stdio: ["ignore", "pipe", "inherit"]
      })
      let out = ""
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString("utf8")
      })
      child.once("exit", (code) => {
        if (code !== 0) return reject(new Error(`producer exited with ${code}`))
        producerResult = JSON.parse(out.trim().split("\n").pop()!) as { produced: number; seconds: number }
        resolve()
      })
    })

  let lastCommit = 0
  const program = Effect.gen(function* () {
    const stop = yield* Deferred.make<void>()
    const files = File.sink<Event>({ path: nodePath.join(dir, "out"), format: { type: "jsonl" } })
    let committed = 0
    const watched = Sink.make({
      ...files,
      open: Effect.map(files.open, (writer) => ({
        write: writer.write,
        commit: Effect.tap(writer.commit, (result) =>
          Effect.suspend(() => {
            committed += result.written
            lastCommit = performance.now()
            return committed >= expectedWritten ? Deferred.succeed(stop, undefined) : Effect.void
          })
        )
      }))
    })
    const run = yield* Pipeline.from(
      Kafka.source<Event>({
        topics: [topic],
        groupId: `bench-${topic}`,
        start: "earliest",
        bounded: false,
        value: { type: "json" }
      })
    ).pipe(
      Pipeline.validate([Rule.notNull("userId"), Rule.range("amount", { min: 0 })]),
      Pipeline.filter((e: Event) => e.kind !== "heartbeat"),
      Pipeline.to(watched),
      Pipeline.withStreaming({ commitInterval: "1 second", commitRecords: 200_000 }),
      Pipeline.run,
      Effect.provideService(StopSignal, Deferred.await(stop)),
      Effect.forkChild
    )
    yield* Effect.promise(startProducer)
    return yield* Fiber.join(run)
  }).pipe(Effect.provide(Layer.merge(NodeKafka.layer({ brokers: [broker.brokers] }), NodeFileStore.layer)))

  const report = await Effect.runPromise(Effect.scoped(program))
  const elapsed = (lastCommit - producerStarted) / 1000
  const summary = {
    node: process.version,
    targetRate: rate,
    seconds,
    produced: producerResult,
    read: report.records.read,
    written: report.records.written,
    segments: report.streaming?.segments,
    sustainedEventsPerSecond: Math.round(report.records.read / elapsed),
    latencyMs: report.streaming?.latencyMs
  }
  console.log(
    `produced ${producerResult?.produced} events in ${producerResult?.seconds.toFixed(1)} s (target ${rate}/s); consumed ${report.records.read}, wrote ${report.records.written} in ${report.streaming?.segments} segments`
  )
  console.log(
    `sustained: ${summary.sustainedEventsPerSecond} events/s (first produce → last commit, ${elapsed.toFixed(1)} s)`
  )
  console.log(
    `end-to-end latency (ms): p50 ${summary.latencyMs?.p50}, p95 ${summary.latencyMs?.p95}, max ${summary.latencyMs?.max} over ${summary.latencyMs?.batches} batches`
  )
  fs.mkdirSync(nodePath.join(root, "bench", "results"), { recursive: true })
  fs.writeFileSync(nodePath.join(root, "bench", "results", "streaming.json"), `${JSON.stringify(summary, null, 2)}\n`)
} finally {
  fs.rmSync(dir, { recursive: true, force: true })
  await broker.stop()
}
