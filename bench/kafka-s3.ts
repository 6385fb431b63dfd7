/**
 * The Kafka → S3 benchmark: N (default 1M) Avro transactions in a 4-partition topic, read by effect-etl's Kafka source
 * (Avro decode) → validate → filter settled → S3 sink (Avro deflate part objects, overwrite), beside, in the same run:
 * - two raw consumers of the same topic, counting messages and value bytes, decoding nothing: @platformatic/kafka (the
 *   connector's client) sending Fetch requests itself with the connector's fetch limits, the baseline of the ratio;
 *   and kafkajs (`eachBatch`), the earlier baseline;
 * - the same raw consumer decoding every value with the connector's decoder and doing nothing else (the least any
 *   pipeline over this topic does);
 * - the pipeline written by hand without the framework (the raw consumer, avsc, the same checks and filter, avsc's
 *   block encoder, the AWS SDK's PutObject).
 * Each case runs in its own process so its peak RSS is its own; beside its time, the CPU it used and the CPU the
 * broker and the S3 server used meanwhile, so a case that kept the machine's cores busy shows it. The servers are the
 * test servers (`test/support`), or yours via `ETL_TEST_KAFKA_BROKERS` / `ETL_TEST_S3_ENDPOINT` (+
 * `ETL_TEST_S3_ACCESS_KEY` / `ETL_TEST_S3_SECRET_KEY`).
 *
 *   node bench/kafka-s3.ts                       # writes bench/results/kafka-s3.json
 *   BENCH_RECORDS=200000 node bench/kafka-s3.ts
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { S3Client as AwsS3Client, PutObjectCommand } from "@aws-sdk/client-s3"
import { Consumer } from "@platformatic/kafka"
import avro from "avsc"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { Kafka as KafkaJs, logLevel } from "kafkajs"
import * as Kafka from "../src/connectors/kafka/Kafka.ts"
import * as NodeKafka from "../src/connectors/kafka/NodeKafka.ts"
import * as NodeS3 from "../src/connectors/s3/NodeS3.ts"
import * as S3 from "../src/connectors/s3/S3.ts"
import { S3Client } from "../src/connectors/s3/S3Client.ts"
import * as Batch from "../src/core/Batch.ts"
import * as Source from "../src/core/Source.ts"
import * as Pipeline from "../src/pipeline/Pipeline.ts"
import * as AvroBridge from "../src/schema/AvroBridge.ts"
import * as AvroFast from "../src/schema/AvroFast.ts"
import type * as AvroSchema from "../src/schema/AvroSchema.ts"
import * as Rule from "../src/transforms/Rule.ts"
import * as KafkaBroker from "../test/support/KafkaBroker.ts"
import * as S3Server from "../test/support/S3Server.ts"
import { makeTx, type Tx } from "./support/Transactions.ts"

const root = nodePath.resolve(import.meta.dirname, "..")
const records = Number(process.env.BENCH_RECORDS ?? 1_000_000)
const avsc = JSON.parse(
  fs.readFileSync(nodePath.join(root, "schemas", "transaction.avsc"), "utf8")
) as AvroSchema.Schema
const type = AvroBridge.toAvroType(avsc)

interface Env {
  readonly brokers: string
  readonly endpoint: string
  readonly accessKey: string
  readonly secretKey: string
  readonly topic: string
  readonly bucket: string
}

const s3Layer = (env: Env) =>
  NodeS3.layer({
    endpoint: env.endpoint,
    forcePathStyle: true,
    accessKeyId: Redacted.make(env.accessKey),
    secretAccessKey: Redacted.make(env.secretKey)
  })

/** Watches RSS every 50 ms (maxRSS of getrusage is also reported). */
const rssPeak = () => {
  let peak = process.memoryUsage().rss
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 50)
  return () => {
    clearInterval(timer)
    return Math.round(Math.max(peak, process.resourceUsage().maxRSS * 1024) / 1024 / 1024)
  }
}

/**
 * CPU seconds (user + system) used so far by the machine's Java processes, the broker and the S3 server (the test
 * servers are both Java): with the case process's own, how much of the machine a case kept busy.
 */
const serverCpuSeconds = (): number => {
  let ticks = 0
  for (const pid of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue
    let stat: string
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    } catch {
      continue // gone meanwhile
    }
    const close = stat.lastIndexOf(")")
    if (stat.slice(stat.indexOf("(") + 1, close) !== "java") continue
    const fields = stat.slice(close + 2).split(" ")
    ticks += Number(fields[11]) + Number(fields[12])
  }
  return ticks / 100
}

const seed = (env: Env) =>
  Effect.gen(function* () {
    const batches = 100
    const per = Math.ceil(records / batches)
    const source = Source.make<Tx>({
      name: "seed",
      type: "memory",
      description: "generated transactions",
      bounded: true,
      batches: () =>
        Stream.fromIterable(Array.from({ length: batches }, (_, b) => b)).pipe(
          Stream.map((b) =>
            Batch.make(
              Array.from({ length: Math.max(0, Math.min(per, records - b * per)) }, (_, i) => makeTx(b * per + i))
            )
          )
        )
    })
    return yield* Pipeline.from(source).pipe(
      Pipeline.to(
        Kafka.sink<Tx>({ topic: env.topic, mode: "upsert", key: ["userId"], value: { type: "avro", schema: avsc } })
      ),
      Pipeline.run
    )
  }).pipe(Effect.provide(NodeKafka.layer({ brokers: [env.brokers] })))

const raw = async (env: Env) => {
  const kafka = new KafkaJs({ brokers: [env.brokers], logLevel: logLevel.NOTHING })
  const consumer = kafka.consumer({
    groupId: `raw-${crypto.randomUUID().slice(0, 8)}`,
    maxBytesPerPartition: 4 * 1024 * 1024,
    maxBytes: 64 * 1024 * 1024,
    maxWaitTimeInMs: 500
  })
  const started = performance.now()
  await consumer.connect()
  await consumer.subscribe({ topics: [env.topic], fromBeginning: true })
  let seen = 0
  let bytes = 0
  await new Promise<void>((resolve) => {
    void consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) bytes += m.value?.length ?? 0
        seen += batch.messages.length
        if (seen >= records) resolve()
      }
    })
  })
  const seconds = (performance.now() - started) / 1000
  await consumer.disconnect()
  return { records: seen, seconds, bytes }
}

/**
 * The connector's client, raw: Fetch requests to each partition's leader with the connector's fetch limits, each
 * message's value handed to `each`; `afterFetch`, awaited after each response, may hold the next fetch back.
 */
const fetchAll = async (
  env: Env,
  each: (value: Buffer | null | undefined) => void,
  afterFetch?: () => Promise<void>
) => {
  const consumer = new Consumer({
    clientId: "bench",
    bootstrapBrokers: [env.brokers],
    groupId: `raw-${crypto.randomUUID().slice(0, 8)}`,
    maxBytes: NodeKafka.fetchLimits.maxBytesPerRequest,
    maxWaitTime: NodeKafka.fetchLimits.maxWaitMs
  })
  consumer.topics.track(env.topic)
  const metadata = await consumer.metadata({ topics: [env.topic] })
  const topic = metadata.topics.get(env.topic)!
  const next = Array.from({ length: topic.partitionsCount }, () => 0n)
  const byLeader = new Map<number, Array<number>>()
  for (const [i, p] of topic.partitions.entries()) byLeader.set(p.leader, [...(byLeader.get(p.leader) ?? []), i])
  let seen = 0
  const loop = async (node: number, owned: ReadonlyArray<number>) => {
    while (seen < records) {
      const response = await consumer.fetch({
        node,
        topics: [
          {
            topicId: topic.id,
            partitions: owned.map((partition) => ({
              partition,
              fetchOffset: next[partition]!,
              partitionMaxBytes: NodeKafka.fetchLimits.maxBytesPerPartition,
              currentLeaderEpoch: -1,
              lastFetchedEpoch: -1
            }))
          }
        ]
      })
      for (const t of response.responses)
        for (const p of t.partitions)
          for (const batch of p.records ?? []) {
            for (const r of batch.records) each(r.value)
            seen += batch.records.length
            next[p.partitionIndex] = batch.firstOffset + BigInt(batch.lastOffsetDelta) + 1n
          }
      if (afterFetch !== undefined) await afterFetch()
    }
  }
  await Promise.all([...byLeader].map(([node, owned]) => loop(node, owned)))
  await consumer.close(true)
  return seen
}

/** The baseline: the connector's client consuming the topic, counting messages and value bytes. */
const platformatic = async (env: Env) => {
  const started = performance.now()
  let bytes = 0
  const seen = await fetchAll(env, (value) => {
    bytes += value?.length ?? 0
  })
  return { records: seen, seconds: (performance.now() - started) / 1000, bytes }
}

/**
 * The least any pipeline over this topic does: the baseline's consumption plus decoding every value, with the fastest
 * decoder the project has (`AvroFast`, the one the connector uses), and nothing else: its rate bounds what a pipeline
 * that also checks, encodes and writes can reach on the machine.
 */
const decodeOnly = async (env: Env) => {
  const started = performance.now()
  const fast = AvroFast.of(type)
  const cursor = { pos: 0 }
  let decoded = 0
  const seen = await fetchAll(env, (value) => {
    if (value === undefined || value === null) return
    cursor.pos = 0
    const record = fast === undefined ? AvroFast.BAIL : fast.decode(value, cursor)
    if ((record === AvroFast.BAIL ? type.fromBuffer(value) : record) !== undefined) decoded++
  })
  return { records: seen, decoded, seconds: (performance.now() - started) / 1000 }
}

/**
 * The pipeline's work written by hand, as a developer would without the framework: the same client and fetches, avsc
 * (with effect-etl's logical types, so values are the pipeline's) decoding each value, the same checks and filter,
 * avsc's `BlockEncoder` (deflate) building objects of 250,000 records, each put with the AWS SDK while the next is
 * built. No dead letters, retries, acknowledgements or counts.
 */
const handWritten = async (env: Env) => {
  const started = performance.now()
  const s3 = new AwsS3Client({
    region: "us-east-1",
    endpoint: env.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: env.accessKey, secretAccessKey: env.secretKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED"
  })
  const currency = /^[A-Z]{3}$/
  let objects = 0
  let written = 0
  let rejected = 0
  let inObject = 0
  let chunks: Array<Buffer> = []
  let encoder = new avro.streams.BlockEncoder(type, { codec: "deflate" })
  let putting: Promise<unknown> = Promise.resolve()
  const collect = (e: typeof encoder, into: Array<Buffer>) => e.on("data", (chunk: Buffer) => into.push(chunk))
  collect(encoder, chunks)
  const cut = async () => {
    const done = new Promise((resolve) => encoder.once("end", resolve))
    encoder.end()
    await done
    const body = Buffer.concat(chunks)
    const key = `hand/part-${String(objects++).padStart(5, "0")}.avro`
    await putting
    putting = s3.send(new PutObjectCommand({ Bucket: env.bucket, Key: key, Body: body }))
    chunks = []
    encoder = new avro.streams.BlockEncoder(type, { codec: "deflate" })
    collect(encoder, chunks)
    inObject = 0
  }
  const seen = await fetchAll(
    env,
    (value) => {
      if (value === undefined || value === null) return void rejected++
      let tx: Tx
      try {
        tx = type.fromBuffer(value) as Tx
      } catch {
        return void rejected++
      }
      if (!currency.test(tx.currency) || tx.userId === null) return void rejected++
      if (tx.status !== "settled") return
      encoder.write(tx)
      written++
      inObject++
    },
    async () => {
      if (inObject >= 250_000) await cut()
    }
  )
  if (inObject > 0) await cut()
  await putting
  s3.destroy()
  return { records: seen, written, rejected, seconds: (performance.now() - started) / 1000 }
}

const etl = (env: Env) =>
  Effect.gen(function* () {
    const schema = {
      name: "transaction",
      fields: undefined,
      validate: (v: unknown) => ({ ok: true as const, value: v }),
      avro: type
    }
    const started = performance.now()
    const report = yield* Pipeline.from(
      Kafka.source<Tx>({
        topics: [env.topic],
        groupId: `etl-${crypto.randomUUID().slice(0, 8)}`,
        start: "earliest",
        value: { type: "avro", schema: avsc }
      })
    ).pipe(
      Pipeline.validate([Rule.pattern("currency", /^[A-Z]{3}$/), Rule.notNull("userId")]),
      Pipeline.filter((t: Tx) => t.status === "settled"),
      Pipeline.to(
        S3.sink<Tx>({
          bucket: env.bucket,
          path: "settled",
          format: { type: "avro", codec: "deflate" },
          mode: "overwrite",
          schema,
          maxRecordsPerObject: 250_000
        })
      ),
      Pipeline.run
    )
    return {
      records: report.records.read,
      written: report.records.written,
      seconds: (performance.now() - started) / 1000
    }
  }).pipe(Effect.provide(Layer.merge(NodeKafka.layer({ brokers: [env.brokers] }), s3Layer(env))))

const caseName = process.argv[2]
if (
  caseName === "raw" ||
  caseName === "platformatic" ||
  caseName === "hand" ||
  caseName === "decode" ||
  caseName === "etl"
) {
  const env = JSON.parse(process.env.BENCH_ENV ?? "{}") as Env
  const peak = rssPeak()
  const result =
    caseName === "raw"
      ? await raw(env)
      : caseName === "platformatic"
        ? await platformatic(env)
        : caseName === "hand"
          ? await handWritten(env)
          : caseName === "decode"
            ? await decodeOnly(env)
            : await Effect.runPromise(etl(env))
  const cpu = process.cpuUsage()
  console.log(JSON.stringify({ ...result, peakRssMb: peak(), cpuSeconds: (cpu.user + cpu.system) / 1e6 }))
  process.exit(0)
}

const [broker, s3] = await Promise.all([KafkaBroker.start(), S3Server.start()])
try {
  const env: Env = {
    brokers: broker.brokers,
    endpoint: s3.endpoint,
    accessKey: s3.accessKey,
    secretKey: s3.secretKey,
    topic: `bench-tx-${crypto.randomUUID().slice(0, 8)}`,
    bucket: `bench-${crypto.randomUUID().slice(0, 8)}`
  }
  const admin = new KafkaJs({ brokers: [env.brokers], logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: env.topic, numPartitions: 4 }], waitForLeaders: true })
  await admin.disconnect()
  await Effect.runPromise(S3Client.use((c) => c.createBucket(env.bucket)).pipe(Effect.provide(s3Layer(env))))
  const seedStarted = performance.now()
  await Effect.runPromise(seed(env))
  const seedSeconds = (performance.now() - seedStarted) / 1000
  console.log(
    `seeded ${records} Avro transactions in ${seedSeconds.toFixed(1)} s (${Math.round(records / seedSeconds)} records/s through Kafka.sink)`
  )
  const run = (name: string) => {
    const serversBefore = serverCpuSeconds()
    const started = performance.now()
    const child = spawnSync(process.execPath, [import.meta.filename, name], {
      env: { ...process.env, BENCH_ENV: JSON.stringify(env), BENCH_RECORDS: String(records) },
      encoding: "utf8",
      maxBuffer: 16 * 1024 * 1024
    })
    const processSeconds = (performance.now() - started) / 1000
    const serverSeconds = serverCpuSeconds() - serversBefore
    if (child.status !== 0) throw new Error(`case ${name} failed: ${child.stderr}`)
    const lines = child.stdout.trim().split("\n")
    const result = JSON.parse(lines[lines.length - 1]!) as {
      records: number
      seconds: number
      peakRssMb: number
      cpuSeconds: number
      written?: number
    }
    // Cores kept busy from the case process's start to its end (its start-up included): its CPU and the servers'.
    const cores = (result.cpuSeconds + serverSeconds) / processSeconds
    console.log(
      `  ${name}: ${processSeconds.toFixed(2)} s in all, CPU ${result.cpuSeconds.toFixed(2)} s (the case) + ${serverSeconds.toFixed(2)} s (broker and S3 server) = ${cores.toFixed(2)} cores busy`
    )
    return { ...result, processSeconds, serverCpuSeconds: serverSeconds, coresBusy: Number(cores.toFixed(2)) }
  }
  const platformaticResult = run("platformatic")
  const rawResult = run("raw")
  const decodeResult = run("decode")
  const handResult = run("hand")
  const etlResult = run("etl")
  const rate = (r: { records: number; seconds: number }) => Math.round(r.records / r.seconds)
  const summary = {
    records,
    node: process.version,
    seed: { seconds: seedSeconds, recordsPerSecond: Math.round(records / seedSeconds) },
    platformaticRaw: { ...platformaticResult, recordsPerSecond: rate(platformaticResult) },
    kafkajsRaw: { ...rawResult, recordsPerSecond: rate(rawResult) },
    decodeOnly: { ...decodeResult, recordsPerSecond: rate(decodeResult) },
    handWritten: { ...handResult, recordsPerSecond: rate(handResult) },
    effectEtl: { ...etlResult, recordsPerSecond: rate(etlResult) },
    ratio: Number((rate(etlResult) / rate(platformaticResult)).toFixed(3)),
    decodeOnlyRatio: Number((rate(decodeResult) / rate(platformaticResult)).toFixed(3)),
    handWrittenRatio: Number((rate(handResult) / rate(platformaticResult)).toFixed(3)),
    ratioToHandWritten: Number((rate(etlResult) / rate(handResult)).toFixed(3)),
    ratioToKafkajs: Number((rate(etlResult) / rate(rawResult)).toFixed(3))
  }
  console.log(
    `@platformatic/kafka raw consume: ${rate(platformaticResult)} records/s, peak RSS ${platformaticResult.peakRssMb} MB`
  )
  console.log(`kafkajs raw consume:             ${rate(rawResult)} records/s, peak RSS ${rawResult.peakRssMb} MB`)
  console.log(`consume + decode only:           ${rate(decodeResult)} records/s, peak RSS ${decodeResult.peakRssMb} MB`)
  console.log(
    `hand-written Kafka → S3 Avro:    ${rate(handResult)} records/s (${handResult.written} written), peak RSS ${handResult.peakRssMb} MB`
  )
  console.log(
    `effect-etl Kafka → S3 Avro:      ${rate(etlResult)} records/s (${etlResult.written} written), peak RSS ${etlResult.peakRssMb} MB`
  )
  console.log(`ratio effect-etl / @platformatic/kafka raw: ${summary.ratio} (/ kafkajs raw: ${summary.ratioToKafkajs})`)
  console.log(
    `ratio to @platformatic/kafka raw: consume + decode only ${summary.decodeOnlyRatio}, hand-written ${summary.handWrittenRatio}; effect-etl / hand-written: ${summary.ratioToHandWritten}`
  )
  fs.mkdirSync(nodePath.join(root, "bench", "results"), { recursive: true })
  fs.writeFileSync(nodePath.join(root, "bench", "results", "kafka-s3.json"), `${JSON.stringify(summary, null, 2)}\n`)
} finally {
  await Promise.all([broker.stop(), s3.stop()])
}
