import { assert, describe, it, layer } from "@effect/vitest"
import type { RecordsBatch } from "@platformatic/kafka"
import * as Effect from "effect/Effect"
import * as fc from "fast-check"
import { Kafka as KafkaJs, logLevel } from "kafkajs"
import * as FetchThread from "../../../src/connectors/kafka/FetchThread.ts"
import * as Kafka from "../../../src/connectors/kafka/Kafka.ts"
import { KafkaClient } from "../../../src/connectors/kafka/KafkaClient.ts"
import * as NodeKafka from "../../../src/connectors/kafka/NodeKafka.ts"
import * as Sink from "../../../src/core/Sink.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"
import { KafkaBroker, uniqueTopic } from "../../support/KafkaBroker.ts"

type KafkaRecord = RecordsBatch["records"][number]

const record = (
  offsetDelta: number,
  timestampDelta: number,
  key: Buffer | null,
  value: Buffer | null,
  headers: KafkaRecord["headers"] = []
): KafkaRecord => ({
  length: 0,
  attributes: 0,
  timestampDelta: BigInt(timestampDelta),
  offsetDelta,
  key,
  value,
  headers
})

const batch = (firstOffset: number, attributes: number, records: ReadonlyArray<KafkaRecord>): RecordsBatch => ({
  firstOffset: BigInt(firstOffset),
  // The batch's length bounds its records' bytes, as on the wire.
  length: 61 + records.reduce((n, r) => n + 20 + (r.key?.length ?? 0) + (r.value?.length ?? 0), 0),
  partitionLeaderEpoch: 0,
  magic: 2,
  crc: 0,
  attributes,
  lastOffsetDelta: records.length === 0 ? 0 : records[records.length - 1]!.offsetDelta,
  firstTimestamp: 1_700_000_000_000n,
  maxTimestamp: 1_700_000_009_999n,
  producerId: -1n,
  producerEpoch: -1,
  firstSequence: -1,
  records: [...records]
})

/** What the consumer makes of record batches without the thread: the messages `eachMessage` visits. */
const direct = (batches: ReadonlyArray<RecordsBatch>, from: bigint) => {
  const out: Array<unknown> = []
  FetchThread.eachMessage(batches, from, (r, offset, timestamp) => {
    const headers: Record<string, string> = {}
    for (const [name, value] of r.headers)
      if (name !== null && value !== null) headers[name.toString()] = value.toString()
    out.push({
      offset,
      timestamp,
      key: r.key?.toString("hex") ?? null,
      value: r.value?.toString("hex") ?? null,
      headers
    })
  })
  return out
}

/** The same through `pack` (what the thread sends) and `unpack` (what the consumer makes of it). */
const throughThread = (batches: ReadonlyArray<RecordsBatch>, from: bigint) => {
  const packed = FetchThread.pack("t", 3, batches, from, 99n)!
  // What crosses threads: a structured clone, with the buffers transferred.
  const received = structuredClone(packed, {
    transfer: [packed.index.buffer as ArrayBuffer, packed.data.buffer as ArrayBuffer]
  })
  return {
    packed: received,
    messages: FetchThread.unpack(
      received,
      (offset, timestamp, key, value) => ({
        offset,
        timestamp,
        key: key?.toString("hex") ?? null,
        value: value?.toString("hex") ?? null,
        headers: {} as Record<string, string>
      }),
      (m, headers) => ({
        ...m,
        headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v).toString()]))
      })
    )
  }
}

describe("FetchThread packing", () => {
  it("packs what the consumer reads itself: control batches skipped, records before the fetch offset left out, log-append times", () => {
    const batches = [
      batch(10, 0, [
        record(0, 5, Buffer.from("k0"), Buffer.from("v0")),
        record(1, 6, null, Buffer.from("v1")),
        record(2, 7, Buffer.from("k2"), null)
      ]),
      // A transaction marker: takes an offset, is no message.
      batch(13, FetchThread.CONTROL, [record(0, 0, Buffer.from([0, 0, 0, 1]), Buffer.from([0, 0, 0, 0]))]),
      // Log-append time: every record has the batch's max timestamp.
      batch(14, FetchThread.LOG_APPEND_TIME, [
        record(0, 1, Buffer.alloc(0), Buffer.alloc(0), [
          [Buffer.from("h"), Buffer.from("x")],
          [null, Buffer.from("dropped")],
          [Buffer.from("é"), Buffer.from("ü")]
        ]),
        record(1, 2, null, null)
      ])
    ]
    const { packed, messages } = throughThread(batches, 11n)
    assert.deepStrictEqual(messages, direct(batches, 11n))
    assert.strictEqual(messages.length, 4)
    assert.strictEqual(packed.next, 16n)
    assert.strictEqual(packed.highWatermark, 99n)
    assert.deepStrictEqual(
      messages.map((m) => (m as { offset: number }).offset),
      [11, 12, 14, 15]
    )
    assert.deepStrictEqual((messages[2] as { headers: unknown }).headers, { h: "x", é: "ü" })
    assert.strictEqual((messages[2] as { timestamp: number }).timestamp, 1_700_000_009_999)
    assert.strictEqual(FetchThread.pack("t", 0, [], 0n, 0n), undefined)
  })

  it("any record batches: the consumer's messages, the same with and without the thread", () => {
    const bytes = fc.option(
      fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
      { nil: null }
    )
    const records = fc.array(
      fc.tuple(
        bytes,
        bytes,
        fc.array(fc.tuple(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 })), { maxLength: 2 })
      ),
      { maxLength: 8 }
    )
    const batches = fc.array(fc.tuple(records, fc.constantFrom(0, FetchThread.CONTROL, FetchThread.LOG_APPEND_TIME)), {
      maxLength: 5
    })
    fc.assert(
      fc.property(batches, fc.nat(30), (specs, skip) => {
        let offset = 100
        const built = specs.map(([rs, attributes]) => {
          const b = batch(
            offset,
            attributes,
            rs.map(([k, v, hs], i) =>
              record(
                i,
                i * 3,
                k,
                v,
                hs.map(([n, x]) => [Buffer.from(n), Buffer.from(x)])
              )
            )
          )
          offset += Math.max(1, rs.length)
          return b
        })
        if (built.length === 0) return
        const from = BigInt(100 + skip)
        const { messages } = throughThread(built, from)
        assert.deepStrictEqual(messages, direct(built, from))
      }),
      { numRuns: 300 }
    )
  })
})

layer(KafkaBroker.layer, { timeout: 120_000, excludeTestServices: true })("FetchThread on the real broker", (it) => {
  it.effect(
    "a consumer reads the same messages with its fetch thread as without (keys, nulls, headers, big values, several fetches)",
    () =>
      Effect.gen(function* () {
        const broker = yield* KafkaBroker
        const topic = uniqueTopic("fetch-thread")
        const kafkajs = new KafkaJs({ brokers: [...broker.brokers], logLevel: logLevel.NOTHING })
        yield* Effect.promise(async () => {
          const admin = kafkajs.admin()
          await admin.connect()
          await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true })
          await admin.disconnect()
          const producer = kafkajs.producer()
          await producer.connect()
          // ~3 MB a partition: several 512 KiB fetches each, record batches cut at the fetch limits.
          for (let round = 0; round < 6; round++)
            await producer.send({
              topic,
              messages: Array.from({ length: 400 }, (_, i) => {
                const n = round * 400 + i
                return {
                  partition: n % 3,
                  key: n % 5 === 0 ? null : `key-${n}`,
                  value: n % 7 === 0 ? null : `${n}:`.padEnd(n % 11 === 0 ? 40_000 : 60, "x"),
                  ...(n % 4 === 0 ? { headers: { trace: `t-${n}`, ünïcode: "ß" } } : {})
                }
              })
            })
          await producer.disconnect()
        })
        const read = (fetchThread: "never" | "always") =>
          Effect.gen(function* () {
            const kafka = yield* NodeKafka.make({ brokers: broker.brokers, fetchThread })
            const out = Sink.collect<Kafka.Envelope<Uint8Array | null>>("out")
            yield* Pipeline.from(
              Kafka.source<Uint8Array | null>({
                topics: [topic],
                groupId: `g-${topic}-${fetchThread}`,
                start: "earliest",
                envelope: true,
                value: { type: "bytes" }
              })
            ).pipe(Pipeline.to(out), Pipeline.run, Effect.provideService(KafkaClient, kafka))
            return out
              .collected()
              .records.map((e) => ({
                partition: e.partition,
                offset: e.offset,
                timestamp: e.timestamp,
                key: e.key,
                headers: e.headers,
                value: e.value === null ? null : Buffer.from(e.value).toString()
              }))
              .sort((a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset))
          }).pipe(Effect.scoped)
        const own = yield* read("never")
        const threaded = yield* read("always")
        assert.strictEqual(own.length, 2400)
        assert.deepStrictEqual(threaded, own)
        assert.strictEqual(own.filter((m) => m.value === null).length, 343)
        assert.deepStrictEqual(own.find((m) => m.headers.trace === "t-8")?.headers, { trace: "t-8", ünïcode: "ß" })
      })
  )

  it.effect("a fetch the thread cannot make comes back empty-handed, and the consumer fetches it itself", () =>
    Effect.gen(function* () {
      const broker = yield* KafkaBroker
      const thread = new FetchThread.FetchThread({
        clientId: "test",
        bootstrapBrokers: [...broker.brokers],
        connectTimeout: 2_000,
        requestTimeout: 5_000
      })
      // A node the cluster does not have: the thread's client fails, the thread answers nothing.
      const failed = yield* Effect.promise(() =>
        thread.fetch({ node: 4242, topics: [], names: [], maxWaitTime: 10, maxBytes: 1024 })
      )
      assert.strictEqual(failed, undefined)
      assert.isTrue(thread.usable)
      yield* Effect.promise(() => thread.close())
      assert.isFalse(thread.usable)
      const afterClose = yield* Effect.promise(() =>
        thread.fetch({ node: 1, topics: [], names: [], maxWaitTime: 10, maxBytes: 1024 })
      )
      assert.strictEqual(afterClose, undefined)
    })
  )
})
