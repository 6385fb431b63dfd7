/**
 * The Kafka clients benchmark: kafkajs against @platformatic/kafka on the same topic in the same run, to pick the live
 * client of the Kafka connector on numbers.
 *
 * N (default 1M) JSON events of ~90 bytes are produced into a 4-partition topic by each client's producer (idempotent,
 * acks=all, no compression, 10,000 messages per send), each into a topic of its own; then every consumer reads the
 * topic @platformatic/kafka wrote, from the earliest offset, counting messages and value bytes (no decoding):
 *
 * - `kafkajs`: a kafkajs consumer in a group, `eachBatch` (what the connector used before);
 * - `platformatic-stream`: a @platformatic/kafka consumer in a group, its `consume()` message stream;
 * - `platformatic-fetch`: a @platformatic/kafka consumer sending Fetch requests itself, partition by partition batch
 *   (how the connector's driver reads);
 * - `connector`: the connector's client contract over whatever `NodeKafka.ts` implements it with (`consume` →
 *   `batches`, a Stream of fetched partition batches), to see what the contract costs on top of its client.
 *
 * Fetch limits are the connector's: 2 MiB per partition, 16 MiB per request, 500 ms max wait. Each case runs in its
 * own process (peak RSS = max(RSS sampled every 50 ms, getrusage maxRSS)), `BENCH_ROUNDS` times (default 3),
 * alternating the cases; the table shows the median. Records/s is counted from the consumer's start (connect, group
 * join) to the last message; "steady" from its first message to its last.
 *
 *   node bench/kafka-clients.ts                      # writes bench/results/kafka-clients.json
 *   BENCH_RECORDS=2000000 BENCH_ROUNDS=5 node bench/kafka-clients.ts
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { Admin, Consumer, Producer } from "@platformatic/kafka"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { Kafka as KafkaJs, logLevel } from "kafkajs"
import { fetchedOnly } from "../src/connectors/kafka/KafkaClient.ts"
import * as NodeKafka from "../src/connectors/kafka/NodeKafka.ts"
import * as KafkaBroker from "../test/support/KafkaBroker.ts"

const root = nodePath.resolve(import.meta.dirname, "..")
const records = Number(process.env.BENCH_RECORDS ?? 1_000_000)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const partitions = 4
const perSend = 10_000
const maxBytesPerPartition = 2 * 1024 * 1024
const maxBytes = 16 * 1024 * 1024
const maxWait = 500

interface Env {
  readonly brokers: string
  /** The topic the consumers read. */
  readonly topic: string
  /** The topic kafkajs's producer writes (read by nobody). */
  readonly kafkajsTopic: string
}

interface Result {
  readonly records: number
  readonly bytes?: number
  readonly seconds: number
  readonly steadySeconds?: number
  readonly peakRssMb: number
}

const event = (i: number): Buffer =>
  Buffer.from(
    JSON.stringify({
      id: i,
      userId: `user-${i % 5000}`,
      kind: i % 10 === 0 ? "heartbeat" : "click",
      amount: i % 997,
      at: 1_764_000_000_000 + i
    })
  )

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

const produceKafkajs = async (env: Env) => {
  const kafka = new KafkaJs({ brokers: [env.brokers], logLevel: logLevel.NOTHING })
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
  await producer.connect()
  const started = performance.now()
  for (let sent = 0; sent < records; sent += perSend) {
    const n = Math.min(perSend, records - sent)
    await producer.send({
      topic: env.kafkajsTopic,
      acks: -1,
      messages: Array.from({ length: n }, (_, k) => ({ value: event(sent + k), partition: (sent + k) % partitions }))
    })
  }
  const seconds = (performance.now() - started) / 1000
  await producer.disconnect()
  return { records, seconds }
}

const producePlatformatic = async (env: Env) => {
  const producer = new Producer({
    clientId: "bench",
    bootstrapBrokers: [env.brokers],
    idempotent: true,
    acks: -1,
    compression: "none"
  })
  const started = performance.now()
  for (let sent = 0; sent < records; sent += perSend) {
    const n = Math.min(perSend, records - sent)
    await producer.send({
      messages: Array.from({ length: n }, (_, k) => ({
        topic: env.topic,
        value: event(sent + k),
        partition: (sent + k) % partitions
      }))
    })
  }
  const seconds = (performance.now() - started) / 1000
  await producer.close()
  return { records, seconds }
}

const consumeKafkajs = async (env: Env) => {
  const kafka = new KafkaJs({ brokers: [env.brokers], logLevel: logLevel.NOTHING })
  const consumer = kafka.consumer({
    groupId: `raw-${crypto.randomUUID().slice(0, 8)}`,
    maxBytesPerPartition,
    maxBytes,
    maxWaitTimeInMs: maxWait
  })
  const started = performance.now()
  let first = 0
  await consumer.connect()
  await consumer.subscribe({ topics: [env.topic], fromBeginning: true })
  let seen = 0
  let bytes = 0
  await new Promise<void>((resolve) => {
    void consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (first === 0) first = performance.now()
        for (const m of batch.messages) bytes += m.value?.length ?? 0
        seen += batch.messages.length
        if (seen >= records) resolve()
      }
    })
  })
  const ended = performance.now()
  await consumer.disconnect()
  return { records: seen, bytes, seconds: (ended - started) / 1000, steadySeconds: (ended - first) / 1000 }
}

const consumePlatformaticStream = async (env: Env) => {
  const consumer = new Consumer({
    clientId: "bench",
    bootstrapBrokers: [env.brokers],
    groupId: `raw-${crypto.randomUUID().slice(0, 8)}`,
    maxBytes,
    maxWaitTime: maxWait
  })
  const started = performance.now()
  let first = 0
  const stream = await consumer.consume({
    topics: [env.topic],
    mode: "earliest",
    autocommit: false,
    maxBytesPerPartition
  })
  let seen = 0
  let bytes = 0
  await new Promise<void>((resolve, reject) => {
    stream.on("error", reject)
    stream.on("data", (m) => {
      if (first === 0) first = performance.now()
      bytes += m.value?.length ?? 0
      if (++seen >= records) resolve()
    })
  })
  const ended = performance.now()
  await stream.close()
  await consumer.close(true)
  return { records: seen, bytes, seconds: (ended - started) / 1000, steadySeconds: (ended - first) / 1000 }
}

const consumePlatformaticFetch = async (env: Env) => {
  const consumer = new Consumer({
    clientId: "bench",
    bootstrapBrokers: [env.brokers],
    groupId: `raw-${crypto.randomUUID().slice(0, 8)}`,
    maxBytes,
    maxWaitTime: maxWait
  })
  const started = performance.now()
  let first = 0
  consumer.topics.track(env.topic)
  const metadata = await consumer.metadata({ topics: [env.topic] })
  const topic = metadata.topics.get(env.topic)!
  const next = Array.from({ length: topic.partitionsCount }, () => 0n)
  const byLeader = new Map<number, Array<number>>()
  for (const [i, p] of topic.partitions.entries()) byLeader.set(p.leader, [...(byLeader.get(p.leader) ?? []), i])
  let seen = 0
  let bytes = 0
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
              partitionMaxBytes: maxBytesPerPartition,
              currentLeaderEpoch: -1,
              lastFetchedEpoch: -1
            }))
          }
        ]
      })
      for (const t of response.responses)
        for (const p of t.partitions) {
          const batches = p.records ?? []
          for (const batch of batches) {
            if (first === 0) first = performance.now()
            for (const r of batch.records) bytes += r.value?.length ?? 0
            seen += batch.records.length
            next[p.partitionIndex] = batch.firstOffset + BigInt(batch.lastOffsetDelta) + 1n
          }
        }
    }
  }
  await Promise.all([...byLeader].map(([node, owned]) => loop(node, owned)))
  const ended = performance.now()
  await consumer.close(true)
  return { records: seen, bytes, seconds: (ended - started) / 1000, steadySeconds: (ended - first) / 1000 }
}

const consumeConnector = (env: Env) =>
  Effect.gen(function* () {
    const started = performance.now()
    let first = 0
    const client = yield* NodeKafka.make({ brokers: [env.brokers] })
    const consumer = yield* client.consume({
      groupId: `raw-${crypto.randomUUID().slice(0, 8)}`,
      topics: [env.topic],
      seeks: Array.from({ length: partitions }, (_, partition) => ({ topic: env.topic, partition, offset: "0" })),
      maxBytesPerPartition
    })
    let seen = 0
    let bytes = 0
    yield* fetchedOnly(consumer.batches).pipe(
      Stream.takeUntil((batch) => {
        if (first === 0) first = performance.now()
        for (const m of batch.messages) bytes += m.value?.length ?? 0
        seen += batch.messages.length
        return seen >= records
      }),
      Stream.runDrain
    )
    const ended = performance.now()
    yield* consumer.close
    return { records: seen, bytes, seconds: (ended - started) / 1000, steadySeconds: (ended - first) / 1000 }
  }).pipe(Effect.scoped)

const cases = {
  "produce-kafkajs": produceKafkajs,
  "produce-platformatic": producePlatformatic,
  kafkajs: consumeKafkajs,
  "platformatic-stream": consumePlatformaticStream,
  "platformatic-fetch": consumePlatformaticFetch,
  connector: (env: Env) => Effect.runPromise(consumeConnector(env))
} as const
type CaseName = keyof typeof cases

const caseName = process.argv[2]
if (caseName !== undefined && caseName in cases) {
  const env = JSON.parse(process.env.BENCH_ENV ?? "{}") as Env
  const peak = rssPeak()
  const result = await cases[caseName as CaseName](env)
  console.log(JSON.stringify({ ...result, peakRssMb: peak() }))
  process.exit(0)
}

const run = (name: CaseName, env: Env): Result => {
  const child = spawnSync(process.execPath, [import.meta.filename, name], {
    env: { ...process.env, BENCH_ENV: JSON.stringify(env), BENCH_RECORDS: String(records) },
    encoding: "utf8",
    maxBuffer: 16 * 1024 * 1024,
    timeout: 600_000
  })
  if (child.status !== 0) throw new Error(`case ${name} failed (${child.status}): ${child.stderr}`)
  const lines = child.stdout.trim().split("\n")
  return JSON.parse(lines[lines.length - 1]!) as Result
}

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

const broker = await KafkaBroker.start()
try {
  const suffix = crypto.randomUUID().slice(0, 8)
  const env: Env = {
    brokers: broker.brokers,
    topic: `bench-clients-${suffix}`,
    kafkajsTopic: `bench-clients-kafkajs-${suffix}`
  }
  const admin = new Admin({ clientId: "bench", bootstrapBrokers: [env.brokers] })
  await admin.createTopics({ topics: [env.topic, env.kafkajsTopic], partitions, replicas: 1 })
  await admin.close()

  const produced = { kafkajs: run("produce-kafkajs", env), platformatic: run("produce-platformatic", env) }
  const rate = (r: Result, steady = false) =>
    Math.round(r.records / (steady ? (r.steadySeconds ?? r.seconds) : r.seconds))
  for (const [name, r] of Object.entries(produced))
    console.log(
      `produce ${name.padEnd(13)} ${rate(r)} records/s (${r.seconds.toFixed(1)} s), peak RSS ${r.peakRssMb} MB`
    )

  const consumers = (process.env.BENCH_CASES?.split(",") ?? [
    "kafkajs",
    "platformatic-stream",
    "platformatic-fetch",
    "connector"
  ]) as ReadonlyArray<CaseName>
  const results = new Map<CaseName, Array<Result>>(consumers.map((c) => [c, []]))
  for (let round = 0; round < rounds; round++)
    for (const name of round % 2 === 0 ? consumers : [...consumers].reverse()) {
      const r = run(name, env)
      if (r.records < records) throw new Error(`case ${name} read ${r.records} of ${records}`)
      results.get(name)!.push(r)
      console.log(
        `round ${round + 1} ${name.padEnd(20)} ${rate(r)} records/s (steady ${rate(r, true)}), peak RSS ${r.peakRssMb} MB`
      )
    }
  const summary = {
    records,
    rounds,
    node: process.version,
    produce: Object.fromEntries(Object.entries(produced).map(([k, r]) => [k, { ...r, recordsPerSecond: rate(r) }])),
    consume: Object.fromEntries(
      [...results].map(([name, rs]) => [
        name,
        {
          recordsPerSecond: median(rs.map((r) => rate(r))),
          steadyRecordsPerSecond: median(rs.map((r) => rate(r, true))),
          peakRssMb: median(rs.map((r) => r.peakRssMb)),
          runs: rs
        }
      ])
    )
  }
  console.log("\nmedians:")
  for (const [name, s] of Object.entries(summary.consume))
    console.log(
      `${name.padEnd(20)} ${s.recordsPerSecond} records/s (steady ${s.steadyRecordsPerSecond}), peak RSS ${s.peakRssMb} MB`
    )
  fs.mkdirSync(nodePath.join(root, "bench", "results"), { recursive: true })
  fs.writeFileSync(
    nodePath.join(root, "bench", "results", "kafka-clients.json"),
    `${JSON.stringify(summary, null, 2)}\n`
  )
} finally {
  await broker.stop()
}
