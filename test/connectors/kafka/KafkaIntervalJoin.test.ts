import { assert, layer } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Kafka from "../../../src/connectors/kafka/Kafka.ts"
import { KafkaClient } from "../../../src/connectors/kafka/KafkaClient.ts"
import * as NodeKafka from "../../../src/connectors/kafka/NodeKafka.ts"
import * as Sink from "../../../src/core/Sink.ts"
import { StopSignal } from "../../../src/core/Stop.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"
import { KafkaBroker, uniqueTopic } from "../../support/KafkaBroker.ts"

interface Order {
  readonly orderId: string
  readonly orderedAt: number
  readonly amount: number
}

interface Payment {
  readonly orderId: string
  readonly paidAt: number
  readonly paid: number
}

type Joined = Order & { readonly payment: Payment | null }

const BASE = Date.UTC(2026, 10, 1)
const FAR = BASE + 10_000_000

/** Keyed JSON messages, sent in this order (so each partition gets them in event-time order). */
const send = <A>(topic: string, records: ReadonlyArray<A>, key: (a: A) => string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const producer = yield* KafkaClient.use((c) => c.producer({ compression: "none" }))
      const encoder = new TextEncoder()
      yield* producer.send(
        topic,
        records.map((r) => ({ key: encoder.encode(key(r)), value: encoder.encode(JSON.stringify(r)) }))
      )
    })
  )

const orders: ReadonlyArray<Order> = Array.from({ length: 200 }, (_, i) => ({
  orderId: `o${i}`,
  orderedAt: BASE + i * 1000,
  amount: i
}))

// Orders i % 3 = 0 get no payment; the others one 0-4 s before the order; orders i % 7 = 0 one more, 2 s after it.
const payments: ReadonlyArray<Payment> = orders
  .flatMap((o, i) => [
    ...(i % 3 === 0 ? [] : [{ orderId: o.orderId, paidAt: o.orderedAt - (i % 5) * 1000, paid: i }]),
    ...(i % 7 === 0 ? [{ orderId: o.orderId, paidAt: o.orderedAt + 2000, paid: -i }] : [])
  ])
  .sort((a, b) => a.paidAt - b.paidAt)

/**
 * What the left join emits once it has read `os` and `ps`: every pair, and each order that met nothing and that no
 * payment still to come can meet (its time is before the payments' watermark, their latest time).
 */
const expected = (os: ReadonlyArray<Order>, ps: ReadonlyArray<Payment>): Array<string> => {
  const watermark = Math.max(...ps.map((p) => p.paidAt))
  const out: Array<string> = []
  for (const o of os) {
    const met = ps.filter((p) => p.orderId === o.orderId && o.orderedAt - 5000 <= p.paidAt && p.paidAt <= o.orderedAt)
    for (const p of met) out.push(`${o.orderId}:${p.paid}`)
    if (met.length === 0 && o.orderedAt < watermark) out.push(`${o.orderId}:null`)
  }
  return out.sort()
}

/** A sink durable per write (so the runtime acknowledges batch by batch), and a way to wait for `n` records. */
const liveSink = () => {
  const seen: Array<Joined> = []
  const waiters: Array<{ readonly n: number; readonly done: Deferred.Deferred<void> }> = []
  const sink = Sink.make<Joined>({
    name: "joined",
    type: "memory",
    description: "records kept in memory, durable per write",
    mode: "append",
    durability: "per-write",
    open: Effect.succeed({
      write: (records: ReadonlyArray<Joined>) =>
        Effect.gen(function* () {
          seen.push(...records)
          for (const w of waiters) if (seen.length >= w.n) yield* Deferred.succeed(w.done, undefined)
        }),
      commit: Effect.sync(() => ({ written: seen.length }))
    })
  })
  const reach = (n: number) =>
    Effect.gen(function* () {
      const done = yield* Deferred.make<void>()
      waiters.push({ n, done })
      if (seen.length >= n) yield* Deferred.succeed(done, undefined)
      yield* Deferred.await(done)
    }).pipe(Effect.timeout("60 seconds"))
  return { sink, seen, reach }
}

const client = Layer.unwrap(Effect.map(KafkaBroker, (broker) => NodeKafka.layer({ brokers: broker.brokers }))).pipe(
  Layer.provide(KafkaBroker.layer)
)

layer(client, { timeout: 180_000, excludeTestServices: true })("interval join of two Kafka topics", (it) => {
  it.effect(
    "joins orders with the payments made up to 5 s before them while both topics stream, emits unpaid orders once the payments' watermark passes, and acknowledges only what it let go",
    () =>
      Effect.gen(function* () {
        const ordersTopic = uniqueTopic("orders")
        const paymentsTopic = uniqueTopic("payments")
        // One partition each: a streaming Kafka read does not name its partitions yet, so the join keeps one
        // watermark per topic, and two partitions read at different paces would make records late.
        yield* KafkaClient.use((c) => c.createTopic(ordersTopic, { partitions: 1 }))
        yield* KafkaClient.use((c) => c.createTopic(paymentsTopic, { partitions: 1 }))
        const group = `g-${crypto.randomUUID().slice(0, 8)}`
        const out = liveSink()
        const stop = yield* Deferred.make<void>()
        const run = yield* Pipeline.from(
          Kafka.source<Order>({
            topics: [ordersTopic],
            groupId: `${group}-orders`,
            start: "earliest",
            bounded: false,
            value: { type: "json" }
          })
        ).pipe(
          Pipeline.intervalJoin(
            Pipeline.from(
              Kafka.source<Payment>({
                topics: [paymentsTopic],
                groupId: `${group}-payments`,
                start: "earliest",
                bounded: false,
                value: { type: "json" }
              })
            ),
            {
              leftKey: "orderId",
              rightKey: "orderId",
              leftTime: "orderedAt",
              rightTime: "paidAt",
              between: ["-5 seconds", "0 seconds"],
              type: "left",
              as: "payment"
            }
          ),
          Pipeline.to(out.sink),
          Pipeline.run,
          Effect.provideService(StopSignal, Deferred.await(stop)),
          Effect.forkChild
        )
        const reach = (n: number) =>
          Effect.raceFirst(
            out.reach(n),
            Fiber.join(run).pipe(Effect.andThen(Effect.die("the run ended before writing every joined record")))
          )
        // The run reads both topics while they are written: first half of the orders and a third of the payments.
        yield* send(ordersTopic, orders.slice(0, 100), (o) => o.orderId)
        yield* send(paymentsTopic, payments.slice(0, 60), (p) => p.orderId)
        yield* reach(expected(orders.slice(0, 100), payments.slice(0, 60)).length)
        // The other payments let go of every order of the first half (the right watermark passes them).
        yield* send(paymentsTopic, payments.slice(60), (p) => p.orderId)
        yield* reach(expected(orders.slice(0, 100), payments).length)
        yield* send(ordersTopic, orders.slice(100), (o) => o.orderId)
        // Records far ahead move both watermarks past everything before them.
        const lastPayment = { orderId: "end-p", paidAt: FAR, paid: 0 }
        yield* send(ordersTopic, [{ orderId: "end", orderedAt: FAR, amount: 0 }], (o) => o.orderId)
        yield* send(paymentsTopic, [lastPayment], (p) => p.orderId)
        const want = expected(orders, [...payments, lastPayment])
        yield* reach(want.length)
        assert.isUndefined(run.pollUnsafe())
        yield* Deferred.succeed(stop, undefined)
        const report = yield* Fiber.join(run)

        assert.deepStrictEqual(
          out.seen.map((r) => `${r.orderId}:${r.payment === null ? "null" : r.payment.paid}`).sort(),
          want
        )
        assert.strictEqual(report.status, "succeeded")
        assert.isTrue(report.reconciliation.ok)
        assert.strictEqual(report.records.read, orders.length + payments.length + 2)
        assert.deepStrictEqual(
          report.stages.map((s) => s.kind),
          ["source", "source", "transform", "sink"]
        )
        // The records far ahead are still held (they may meet records to come): their batches are not acknowledged,
        // while those of the records let go were.
        const committed = (topic: string, groupId: string) =>
          KafkaClient.use((c) =>
            Effect.all([c.committedOffsets(groupId, topic), c.partitionOffsets(topic)] as const)
          ).pipe(
            Effect.map(([done, ends]) =>
              ends.map((e) => ({
                committed: Number(done.find((d) => d.partition === e.partition)?.offset ?? 0),
                end: Number(e.high)
              }))
            )
          )
        const orderOffsets = yield* committed(ordersTopic, `${group}-orders`)
        const paymentOffsets = yield* committed(paymentsTopic, `${group}-payments`)
        for (const { committed: c, end } of [...orderOffsets, ...paymentOffsets]) assert.isBelow(c, end)
        assert.isAtLeast(orderOffsets[0]!.committed, 100, "the first half of the orders, all let go, was acknowledged")
      })
  )
})
