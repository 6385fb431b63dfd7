/**
 * The cost of observability export: the same pipelines run with export off and on, alternating in one process, and
 * the throughput ratio on/off.
 *
 * - file: the quickstart pipeline (JSON Lines → validate / filter / derive → Avro), BENCH_RECORDS transactions
 *   (default 1,000,000);
 * - postgres: PostgreSQL → PostgreSQL append, BENCH_ROWS rows (default 500,000), in a schema `etl_bench_obs_*`
 *   dropped at the end (server of ETL_TEST_PG_URL, default the local one).
 *
 * "On" is `Export.layer` with OTLP/HTTP (protobuf) to a receiver in this process that reads and drops the bodies,
 * plus a Prometheus endpoint scraped every second. Each case runs BENCH_RUNS times (default 7) in each mode, modes
 * alternating (off, on, on, off, ...) so that drift (JIT warm-up, a noisy neighbour) falls on both. Writes
 * `bench/results/observability.json`.
 *
 *   node bench/observability.ts
 */
import * as fs from "node:fs"
import * as http from "node:http"
import * as nodePath from "node:path"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import pg from "pg"
import * as Transactions from "../scripts/transactions.ts"
import * as Build from "../src/config/Build.ts"
import * as Load from "../src/config/Load.ts"
import * as Records from "../src/config/Records.ts"
import * as NodeFileStore from "../src/connectors/file/NodeFileStore.ts"
import * as NodePostgres from "../src/connectors/postgres/NodePostgres.ts"
import * as Postgres from "../src/connectors/postgres/Postgres.ts"
import type { RunReport } from "../src/core/RunReport.ts"
import * as Export from "../src/observability/Export.ts"
import * as Pipeline from "../src/pipeline/Pipeline.ts"
import * as Runner from "../src/runtime/Runner.ts"
import * as AvroBridge from "../src/schema/AvroBridge.ts"
import * as SchemaRegistry from "../src/schema/SchemaRegistry.ts"

const root = nodePath.resolve(import.meta.dirname, "..")
const records = Number(process.env.BENCH_RECORDS ?? 1_000_000)
const rows = Number(process.env.BENCH_ROWS ?? 500_000)
const RUNS = Number(process.env.BENCH_RUNS ?? 7)
const pgUrl = process.env.ETL_TEST_PG_URL ?? "postgres://root@127.0.0.1:5432/test"
const work = nodePath.join(root, ".tmp", "bench")
const input = nodePath.join(work, `transactions-${records}.jsonl`)

/** An OTLP/HTTP endpoint that reads each body and answers 200, counting what it got. */
const startSink = () =>
  new Promise<{ readonly url: string; readonly stats: { requests: number; bytes: number }; close: () => void }>(
    (resolve) => {
      const stats = { requests: 0, bytes: 0 }
      const server = http.createServer((request, response) => {
        request.on("data", (chunk: Buffer) => (stats.bytes += chunk.length))
        request.on("end", () => {
          stats.requests++
          response.writeHead(200, { "content-type": "application/x-protobuf" }).end()
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resolve({ url: `http://127.0.0.1:${port}`, stats, close: () => server.close() })
      })
    }
  )

/** Scrapes the Prometheus endpoint every second while `effect` runs; returns how many scrapes answered 200. */
const scraping = <A>(effect: Effect.Effect<A, unknown>) =>
  Effect.gen(function* () {
    const { address } = yield* Export.PrometheusServer
    let scrapes = 0
    const timer =
      address === undefined
        ? undefined
        : setInterval(() => {
            http
              .get(address.url, (r) => {
                r.resume()
                if (r.statusCode === 200) scrapes++
              })
              .on("error", () => {})
          }, 1000)
    const value = yield* Effect.ensuring(
      effect,
      Effect.sync(() => clearInterval(timer))
    )
    return { value, scrapes }
  })

const quiet = Logger.layer([])

interface Sample {
  readonly case: string
  readonly mode: "off" | "on"
  readonly seconds: number
  readonly recordsPerSecond: number
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

const measure = async (
  name: string,
  n: number,
  pipeline: Effect.Effect<RunReport, unknown>,
  options: Export.ObservabilityOptions,
  before: () => Promise<unknown>
): Promise<ReadonlyArray<Sample>> => {
  const samples: Array<Sample> = []
  // One warm-up run in each mode, not counted: the first run of a case pays for JIT compilation.
  for (let i = -2; i < RUNS * 2; i++) {
    // off, on, on, off, off, on, ...: each mode runs first as often as second.
    const mode: "off" | "on" = i === -2 || i % 4 === 0 || i % 4 === 3 ? "off" : "on"
    await before()
    const t0 = performance.now()
    const { value: report } = await Effect.runPromise(
      scraping(pipeline).pipe(
        Effect.provide(Export.layer(mode === "on" ? options : {})),
        Effect.provide(quiet),
        // A registry of its own, as a CLI run has in its own process: an export carries this run's series only.
        Effect.provideService(Metric.MetricRegistry, new Map())
      )
    )
    const seconds = (performance.now() - t0) / 1000
    if (report.status !== "succeeded") throw new Error(`${name} ${mode}: ${report.error?.message}`)
    if (i < 0) continue
    samples.push({ case: name, mode, seconds, recordsPerSecond: n / seconds })
    console.log(`${name} ${mode}: ${seconds.toFixed(3)} s, ${Math.round(n / seconds)} records/s`)
  }
  return samples
}

const filePipeline = Effect.gen(function* () {
  const config = JSON.parse(fs.readFileSync(nodePath.join(root, "examples/quickstart.json"), "utf8"))
  config.source.path = input
  config.sink.path = nodePath.join(work, "obs-out")
  config.dead_letters.path = nodePath.join(work, "obs-dead")
  const decoded = yield* Load.decode("bench", config)
  const registry = yield* SchemaRegistry.SchemaRegistry
  const pipeline = yield* Build.build(decoded, { file: "bench", schema: Records.lookup(registry, "bench") })
  return yield* Runner.run(pipeline)
}).pipe(
  Effect.provide(Layer.mergeAll(NodeFileStore.layer, SchemaRegistry.layer(nodePath.join(root, "schemas"))))
) as Effect.Effect<RunReport, unknown>

const Txn = Schema.Struct({
  id: AvroBridge.long,
  user_id: Schema.String,
  amount: AvroBridge.decimal({ precision: 12, scale: 2 }),
  currency: Schema.String,
  status: Schema.String,
  created_at: AvroBridge.timestampMillis
})
const pgDDL = (name: string) =>
  `CREATE TABLE ${name} (id bigint PRIMARY KEY, user_id text NOT NULL, amount numeric(12,2) NOT NULL, currency text NOT NULL, status text NOT NULL, created_at timestamptz(3) NOT NULL)`

const sink = await startSink()
const options: Export.ObservabilityOptions = {
  otlp: Export.otlp({ endpoint: sink.url, serviceName: "bench", exportInterval: "1 second" }),
  prometheus: Export.prometheus({ port: 0 })
}

fs.mkdirSync(work, { recursive: true })
if (!fs.existsSync(input)) {
  console.log(`generating ${records} transactions in ${input}`)
  Transactions.writeFile(input, records)
}
const samples: Array<Sample> = []
samples.push(...(await measure("file: JSONL → validate → Avro", records, filePipeline, options, async () => {})))

const schema = `etl_bench_obs_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`
const admin = new pg.Client({ connectionString: pgUrl })
await admin.connect()
await admin.query(`CREATE SCHEMA ${schema}; SET search_path TO ${schema}`)
try {
  await admin.query(pgDDL("txn_src"))
  await admin.query(
    `INSERT INTO txn_src SELECT i, 'u' || (i % 10000), round((random() * 2500)::numeric, 2), (ARRAY['EUR','USD','GBP','CHF'])[1 + i % 4],
            (ARRAY['settled','pending','failed'])[1 + i % 3], timestamp '2026-11-01' + i * interval '1 second' FROM generate_series(1, ${rows}) i`
  )
  await admin.query("ANALYZE txn_src")
  await admin.query(pgDDL("txn_dst"))
  const pgPipeline = Pipeline.from(Postgres.table("txn_src", Txn)).pipe(
    Pipeline.to(Postgres.table("txn_dst", Txn)),
    Pipeline.withRetry({ attempts: 1, initialDelay: "0 millis", factor: 1 }),
    Pipeline.run,
    Effect.provide(NodePostgres.layer({ url: Redacted.make(pgUrl), schema }))
  ) as Effect.Effect<RunReport, unknown>
  samples.push(
    ...(await measure("postgres → postgres append", rows, pgPipeline, options, () => admin.query("TRUNCATE txn_dst")))
  )
} finally {
  await admin.query(`DROP SCHEMA ${schema} CASCADE`)
  await admin.end()
  sink.close()
}

const summary = [...new Set(samples.map((s) => s.case))].map((name) => {
  const of = (mode: "off" | "on") =>
    median(samples.filter((s) => s.case === name && s.mode === mode).map((s) => s.recordsPerSecond))
  const off = of("off")
  const on = of("on")
  return {
    case: name,
    offRecordsPerSecond: Math.round(off),
    onRecordsPerSecond: Math.round(on),
    ratio: Math.round((on / off) * 1000) / 1000
  }
})
fs.mkdirSync(nodePath.join(root, "bench", "results"), { recursive: true })
fs.writeFileSync(
  nodePath.join(root, "bench", "results", "observability.json"),
  `${JSON.stringify(
    {
      benchmark: "observability export on/off",
      node: process.version,
      date: new Date().toISOString(),
      runsPerMode: RUNS,
      records,
      rows,
      otlp: { requests: sink.stats.requests, bytes: sink.stats.bytes },
      summary,
      samples
    },
    null,
    2
  )}\n`
)
console.table(summary)
console.log(`OTLP receiver got ${sink.stats.requests} requests, ${sink.stats.bytes} bytes`)
