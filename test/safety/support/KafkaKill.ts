/**
 * What the Kafka kill tests of issue 11 share: a topic filled while the pipeline runs and dies, and the config of each
 * run (the CLI reads a fresh file per run).
 */
import * as fs from "node:fs"
import * as nodePath from "node:path"
import * as Effect from "effect/Effect"
import { KafkaClient } from "../../../src/connectors/kafka/KafkaClient.ts"
import * as NodeKafka from "../../../src/connectors/kafka/NodeKafka.ts"

export const RECORDS = 30_000
export const KILLS = 6

/** Creates the topic, then produces RECORDS records in steps of 250 every 100 ms, while the pipeline runs and dies. */
export const produce = (
  brokers: string,
  topic: string,
  options?: {
    readonly closers?: boolean
    readonly partitions?: number
    /** The message key of record `i` (default `i mod 7`). */
    readonly key?: (i: number) => string
  }
) =>
  Effect.gen(function* () {
    const client = yield* KafkaClient
    yield* client.createTopic(topic, { partitions: options?.partitions ?? 3 })
    const producer = yield* client.producer({ compression: "none" })
    const encoder = new TextEncoder()
    for (let start = 0; start < RECORDS; start += 250) {
      const messages = []
      for (let i = start; i < start + 250; i++)
        messages.push({
          key: encoder.encode(options?.key === undefined ? String(i % 7) : options.key(i)),
          value: encoder.encode(
            JSON.stringify(
              options?.closers === true ? { id: i, amount: i % 100, ts: i * 10 } : { id: i, amount: i % 100 }
            )
          )
        })
      yield* producer.send(topic, messages)
      yield* Effect.sleep("100 millis")
    }
    // Records far ahead in event time, with keys that reach every partition: they close every window before them.
    if (options?.closers === true)
      yield* producer.send(
        topic,
        Array.from({ length: 30 }, (_, k) => ({
          key: encoder.encode(`closer-${k}`),
          value: encoder.encode(JSON.stringify({ id: RECORDS + k, amount: 0, ts: Date.UTC(2001, 0, 1) + k }))
        }))
      )
  }).pipe(Effect.scoped, Effect.provide(NodeKafka.layer({ brokers: brokers.split(",") })))

export const writeConfig = (
  dir: string,
  run: number,
  topic: string,
  sink: Record<string, unknown>,
  connection: Record<string, unknown> | undefined,
  extra?: {
    readonly transforms?: ReadonlyArray<unknown>
    readonly state?: Record<string, unknown>
    /** The streaming state scope (default: the pipeline's). */
    readonly stateScope?: "pipeline" | "partition"
    /** Source fields that replace the defaults (a shared `group_id`, a `session_timeout`). */
    readonly source?: Record<string, unknown>
  }
) => {
  const path = nodePath.join(dir, `run-${run}.json`)
  fs.writeFileSync(
    path,
    JSON.stringify({
      name: `kill-${topic}`,
      mode: "streaming",
      streaming: {
        commit_interval: "200 millis",
        commit_records: 1500,
        state: extra?.state ?? { type: "file", path: nodePath.join(dir, "state") },
        ...(extra?.stateScope === undefined ? {} : { state_scope: extra.stateScope })
      },
      connections: {
        events: { type: "kafka", brokers: [{ $env: "ETL_KAFKA_BROKERS" }] },
        ...(connection === undefined ? {} : { db: connection })
      },
      source: {
        type: "kafka",
        connection: "events",
        topics: [topic],
        // Each run joins a group of its own: a killed member would hold the group's partitions for its session
        // timeout. The positions come from the sink, whatever the group.
        group_id: `g-${topic}-${run}`,
        start: "earliest",
        value: { type: "json" },
        ...extra?.source
      },
      transforms: extra?.transforms ?? [{ type: "filter", condition: "amount >= 0" }],
      sink: connection === undefined ? sink : { ...sink, connection: "db" }
    })
  )
  return path
}

/** The windowed pipeline of the kill tests: 2 s tumbling windows of event time per user (id mod 5), count and sum. */
export const windowTransforms: ReadonlyArray<unknown> = [
  { type: "derive", fields: { user: "'u' + string(int(id) % 5)" } },
  { type: "window", kind: "tumbling", time: "ts", size: "2 seconds", allowed_lateness: "1 hour" },
  {
    type: "aggregate",
    group_by: ["windowStart", "user"],
    fields: { n: { fn: "count" }, total: { fn: "sum", field: "amount" } }
  }
]

/** The table the windowed pipeline upserts into. */
export const totalsTable = `CREATE TABLE totals ("windowStart" timestamptz, "user" text, n bigint NOT NULL, total double precision NOT NULL, PRIMARY KEY ("windowStart", "user"))`

/** The rows of the totals table the produced records make (closers left out), as `start user n=… total=…`, sorted. */
export const totalsQuery = `SELECT "windowStart", "user", n, total FROM totals WHERE "windowStart" < '2000-01-01'`

/** Rows of {@link totalsQuery} as lines. */
export const totalsLines = (rows: ReadonlyArray<Readonly<Record<string, unknown>>>): Array<string> =>
  rows.map(
    (r) =>
      `${new Date(r.windowStart as string | Date).getTime()} ${String(r.user)} n=${String(r.n)} total=${Number(r.total)}`
  )

/** The lines {@link totalsLines} must give once every record was read (record i at i × 10 ms event time), sorted. */
export const expectedTotals = (): Array<string> => {
  const expected = new Map<string, { n: number; total: number }>()
  for (let i = 0; i < RECORDS; i++) {
    const key = `${Math.floor((i * 10) / 2000) * 2000} u${i % 5}`
    const e = expected.get(key) ?? { n: 0, total: 0 }
    e.n++
    e.total += i % 100
    expected.set(key, e)
  }
  return [...expected].map(([key, e]) => `${key} n=${e.n} total=${e.total}`).sort()
}
