/**
 * Benchmark of the SQL connectors against raw driver baselines measured in the same run, on the real servers.
 *
 * - PostgreSQL → PostgreSQL, 1M narrow transaction rows: the raw chain (`COPY (SELECT ...) TO STDOUT` piped into
 *   `COPY ... FROM STDIN`, no parsing, no framework), then effect-etl append: a straight table → table copy passes its
 *   rows through as COPY text (only rows whose text may not be a record's value are parsed, see
 *   `src/core/PassThrough.ts`); the same copy with an identity map measures the records path (COPY out parsed into typed records,
 *   every row validated against the whole schema; validated as `Postgres.table` does, only what the column types
 *   do not guarantee; not validated; COPY in), then upsert into the filled table (COPY into a staging table + one `INSERT ... ON CONFLICT`).
 * - MySQL → MySQL: the raw chain (streamed SELECT, rows written as text into `LOAD DATA LOCAL INFILE`), then
 *   effect-etl append and upsert.
 * - Peak RSS of a PostgreSQL → PostgreSQL append of 1M and of 5M rows, each in a fresh process.
 *
 * Run: `node bench/sql.ts [rows]` (default 1,000,000). Needs the servers of ETL_TEST_PG_URL / ETL_TEST_MYSQL_URL
 * (defaults: the local ones). Writes `bench/results/sql.json`. Work happens in a schema / database named
 * `etl_bench_*`, dropped at the end.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { PassThrough } from "node:stream"
import { pipeline } from "node:stream/promises"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import mysql from "mysql2"
import pg from "pg"
import { from as copyFrom, to as copyTo } from "pg-copy-streams"
import * as Mysql from "../src/connectors/mysql/Mysql.ts"
import * as NodeMysql from "../src/connectors/mysql/NodeMysql.ts"
import * as NodePostgres from "../src/connectors/postgres/NodePostgres.ts"
import * as Postgres from "../src/connectors/postgres/Postgres.ts"
import { system } from "../src/connectors/postgres/PostgresClient.ts"
import * as SqlTable from "../src/connectors/sql/SqlTable.ts"
import type { RunReport } from "../src/core/RunReport.ts"
import * as Pipeline from "../src/pipeline/Pipeline.ts"
import * as AvroBridge from "../src/schema/AvroBridge.ts"

const pgUrl = process.env.ETL_TEST_PG_URL ?? "postgres://root@127.0.0.1:5432/test"
const mysqlUrl = process.env.ETL_TEST_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test"

/** The benchmark's record: a narrow payment transaction. */
const Txn = Schema.Struct({
  id: AvroBridge.long,
  user_id: Schema.String,
  amount: AvroBridge.decimal({ precision: 12, scale: 2 }),
  currency: Schema.String,
  status: Schema.String,
  created_at: AvroBridge.timestampMillis
})

/** One measured case: the median of RUNS runs (and the best one). */
interface Row {
  readonly system: string
  readonly case: string
  readonly rows: number
  readonly seconds: number
  readonly recordsPerSecond: number
  readonly bestRecordsPerSecond: number
  readonly ofRaw?: number
}

const RUNS = Number(process.env.BENCH_RUNS ?? 3)

/** Runs `f` RUNS times (each after `before`), and returns the median and the best duration. */
const repeat = async (f: () => Promise<void>, before: () => Promise<unknown>) => {
  const times: Array<number> = []
  for (let i = 0; i < RUNS; i++) {
    await before()
    const t0 = performance.now()
    await f()
    times.push((performance.now() - t0) / 1000)
  }
  times.sort((a, b) => a - b)
  return { median: times[Math.floor(times.length / 2)]!, best: times[0]! }
}

const tag = crypto.randomUUID().replaceAll("-", "").slice(0, 8)

const pgDDL = (name: string) =>
  `CREATE TABLE ${name} (id bigint PRIMARY KEY, user_id text NOT NULL, amount numeric(12,2) NOT NULL, currency text NOT NULL, status text NOT NULL, created_at timestamptz(3) NOT NULL)`
const myDDL = (name: string) =>
  `CREATE TABLE ${name} (id BIGINT PRIMARY KEY, user_id VARCHAR(20) NOT NULL, amount DECIMAL(12,2) NOT NULL, currency CHAR(3) NOT NULL, status VARCHAR(12) NOT NULL, created_at DATETIME(3) NOT NULL)`

const time = async <A>(f: () => Promise<A>): Promise<{ readonly value: A; readonly seconds: number }> => {
  const t0 = performance.now()
  const value = await f()
  return { value, seconds: (performance.now() - t0) / 1000 }
}

// Run logs would interleave with the table (and the child's JSON): the benchmark keeps none.
const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(Effect.provide(effect, Logger.layer([])))

// -----------------------------------------------------------------------------
// PostgreSQL
// -----------------------------------------------------------------------------

const pgBench = async (n: number): Promise<ReadonlyArray<Row>> => {
  const schema = `etl_bench_${tag}`
  const admin = new pg.Client({ connectionString: pgUrl })
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}; SET search_path TO ${schema}`)
  try {
    await admin.query(pgDDL("txn_src"))
    await admin.query(
      `INSERT INTO txn_src SELECT i, 'u' || (i % 10000), round((random() * 2500)::numeric, 2), (ARRAY['EUR','USD','GBP','CHF'])[1 + i % 4],
              (ARRAY['settled','pending','failed'])[1 + i % 3], timestamp '2026-11-01' + i * interval '1 second' FROM generate_series(1, ${n}) i`
    )
    await admin.query("ANALYZE txn_src")
    const rows: Array<Row> = []

    // raw chain: COPY TO STDOUT piped into COPY FROM STDIN on a second connection
    await admin.query(`${pgDDL("txn_raw")}`)
    const a = new pg.Client({ connectionString: pgUrl })
    const b = new pg.Client({ connectionString: pgUrl })
    await a.connect()
    await b.connect()
    const raw = await repeat(
      async () => {
        await b.query("BEGIN")
        await pipeline(
          a.query(copyTo(`COPY (SELECT * FROM ${schema}.txn_src) TO STDOUT`)),
          b.query(copyFrom(`COPY ${schema}.txn_raw FROM STDIN`))
        )
        await b.query("COMMIT")
      },
      () => admin.query("TRUNCATE txn_raw")
    )
    await a.end()
    await b.end()
    rows.push({
      system: "postgres",
      case: "raw COPY TO → COPY FROM",
      rows: n,
      seconds: raw.median,
      recordsPerSecond: n / raw.median,
      bestRecordsPerSecond: n / raw.best
    })

    await admin.query(pgDDL("txn_dst"))
    const layer = NodePostgres.layer({ url: Redacted.make(pgUrl), schema })
    // A straight table → table copy passes its rows through as COPY text (see src/core/PassThrough.ts); an identity
    // map keeps the pass-through out, so that the records path is measured too.
    const pipe = (mode: "append" | "upsert", validate: boolean, parsed = false) =>
      Pipeline.from(Postgres.table("txn_src", Txn, { validate })).pipe(
        (flow) => (parsed ? flow.pipe(Pipeline.map((t: typeof Txn.Type) => t)) : flow),
        Pipeline.to(Postgres.table("txn_dst", Txn, mode === "upsert" ? { mode, keys: ["id"] } : { mode })),
        Pipeline.withRetry({ attempts: 1, initialDelay: "0 millis", factor: 1 }),
        Pipeline.run,
        Effect.provide(layer)
      )
    const measure = async (
      label: string,
      effect: Effect.Effect<RunReport, unknown>,
      before: () => Promise<unknown>
    ) => {
      const r = await repeat(async () => {
        const report = await run(effect)
        if (report.records.written !== n) throw new Error(`${label}: wrote ${report.records.written} of ${n}`)
      }, before)
      rows.push({
        system: "postgres",
        case: label,
        rows: n,
        seconds: r.median,
        recordsPerSecond: n / r.median,
        bestRecordsPerSecond: n / r.best,
        ofRaw: raw.median / r.median
      })
    }
    // The same read with every row checked against the whole schema: what a source does when it cannot use the
    // column types (a query, a client without typed reads), and what every table read did before it could.
    const everyRow = SqlTable.source<typeof Txn.Type, Postgres.PostgresError, Postgres.PostgresClient<"default">>(
      system,
      Postgres.client(),
      {
        name: "txn_src",
        relation: { _tag: "Table", ref: { name: "txn_src" } },
        columns: SqlTable.structFields(Txn),
        batchSize: 10_000,
        validate: SqlTable.typeValidator(Txn)
      },
      "txn_src"
    )
    const everyRowPipe = Pipeline.from(everyRow).pipe(
      Pipeline.to(Postgres.table("txn_dst", Txn)),
      Pipeline.withRetry({ attempts: 1, initialDelay: "0 millis", factor: 1 }),
      Pipeline.run,
      Effect.provide(layer)
    )
    const truncate = () => admin.query("TRUNCATE txn_dst")
    const nothing = async () => {}
    await measure("effect-etl append (every row validated)", everyRowPipe, truncate)
    await measure("effect-etl append (validated records, passed through as COPY text)", pipe("append", true), truncate)
    await measure(
      "effect-etl append (validated records, parsed: an identity map)",
      pipe("append", true, true),
      truncate
    )
    await measure("effect-etl append (no validation, passed through)", pipe("append", false), truncate)
    await measure("effect-etl upsert, every key present (all updates, passed through)", pipe("upsert", true), nothing)
    await measure("effect-etl upsert, empty target (all inserts, passed through)", pipe("upsert", true), truncate)
    return rows
  } finally {
    await admin.query(`DROP SCHEMA ${schema} CASCADE`)
    await admin.end()
  }
}

// -----------------------------------------------------------------------------
// MySQL
// -----------------------------------------------------------------------------

const myQuery = (conn: mysql.Connection, sql: string, extra?: object) =>
  new Promise<unknown>((resolve, reject) =>
    conn.query({ sql, ...extra }, (e: unknown, r: unknown) => (e ? reject(e) : resolve(r)))
  )

const mysqlBench = async (n: number): Promise<ReadonlyArray<Row>> => {
  const database = `etl_bench_${tag}`
  const admin = mysql.createConnection({ uri: mysqlUrl, multipleStatements: true })
  await myQuery(admin, `CREATE DATABASE ${database}; USE ${database}`)
  try {
    await myQuery(admin, myDDL("txn_src"))
    await myQuery(
      admin,
      `INSERT INTO txn_src SELECT seq, CONCAT('u', seq % 10000), ROUND(RAND() * 2500, 2), ELT(1 + seq % 4, 'EUR','USD','GBP','CHF'),
              ELT(1 + seq % 3, 'settled','pending','failed'), TIMESTAMP '2026-11-01 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_${n}`
    )
    const rows: Array<Row> = []
    await myQuery(admin, myDDL("txn_raw"))
    const src = mysql.createConnection({
      uri: mysqlUrl,
      database,
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true
    })
    const dst = mysql.createConnection({ uri: mysqlUrl, database })
    const raw = await repeat(
      async () => {
        const text = new PassThrough()
        await myQuery(dst, "START TRANSACTION")
        const load = myQuery(
          dst,
          "LOAD DATA LOCAL INFILE 'x' INTO TABLE txn_raw FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n'",
          {
            infileStreamFactory: () => text
          }
        )
        const rowsStream = src
          .query({ sql: "SELECT * FROM txn_src", rowsAsArray: true })
          .stream({ highWaterMark: 10_000 })
        let buffer = ""
        for await (const r of rowsStream as AsyncIterable<ReadonlyArray<unknown>>) {
          buffer += `${r.join("\t")}\n`
          if (buffer.length > 1 << 20) {
            if (!text.write(buffer)) await new Promise((resolve) => text.once("drain", resolve))
            buffer = ""
          }
        }
        text.end(buffer)
        await load
        await myQuery(dst, "COMMIT")
      },
      () => myQuery(admin, "TRUNCATE txn_raw")
    )
    src.end()
    dst.end()
    rows.push({
      system: "mysql",
      case: "raw SELECT stream → LOAD DATA LOCAL",
      rows: n,
      seconds: raw.median,
      recordsPerSecond: n / raw.median,
      bestRecordsPerSecond: n / raw.best
    })

    await myQuery(admin, myDDL("txn_dst"))
    const layer = NodeMysql.layer({ url: Redacted.make(mysqlUrl), database })
    const pipe = (mode: "append" | "upsert", validate: boolean) =>
      Pipeline.from(Mysql.table("txn_src", Txn, { validate })).pipe(
        Pipeline.to(Mysql.table("txn_dst", Txn, mode === "upsert" ? { mode, keys: ["id"] } : { mode })),
        Pipeline.withRetry({ attempts: 1, initialDelay: "0 millis", factor: 1 }),
        Pipeline.run,
        Effect.provide(layer)
      )
    const measure = async (
      label: string,
      effect: Effect.Effect<RunReport, unknown>,
      before: () => Promise<unknown>
    ) => {
      const r = await repeat(async () => {
        const report = await run(effect)
        if (report.records.written !== n) throw new Error(`${label}: wrote ${report.records.written} of ${n}`)
      }, before)
      rows.push({
        system: "mysql",
        case: label,
        rows: n,
        seconds: r.median,
        recordsPerSecond: n / r.median,
        bestRecordsPerSecond: n / r.best,
        ofRaw: raw.median / r.median
      })
    }
    const truncate = () => myQuery(admin, "TRUNCATE txn_dst")
    const nothing = async () => {}
    await measure("effect-etl append (validated records)", pipe("append", true), truncate)
    await measure("effect-etl append (no validation)", pipe("append", false), truncate)
    await measure("effect-etl upsert, every key present (all updates)", pipe("upsert", true), nothing)
    await measure("effect-etl upsert, empty target (all inserts)", pipe("upsert", true), truncate)
    return rows
  } finally {
    await myQuery(admin, `DROP DATABASE ${database}`)
    admin.end()
  }
}

// -----------------------------------------------------------------------------
// Peak RSS: one PostgreSQL → PostgreSQL append per process
// -----------------------------------------------------------------------------

const rssChild = async (n: number): Promise<void> => {
  const schema = `etl_bench_rss_${tag}`
  const admin = new pg.Client({ connectionString: pgUrl })
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}; SET search_path TO ${schema}`)
  try {
    await admin.query(pgDDL("txn_src"))
    await admin.query(
      `INSERT INTO txn_src SELECT i, 'u' || (i % 10000), round((random() * 2500)::numeric, 2), 'EUR', 'settled',
              timestamp '2026-11-01' + i * interval '1 second' FROM generate_series(1, ${n}) i`
    )
    await admin.query(pgDDL("txn_dst"))
    const before = process.memoryUsage().rss
    const r = await time(() =>
      run(
        Pipeline.from(Postgres.table("txn_src", Txn)).pipe(
          Pipeline.to(Postgres.table("txn_dst", Txn)),
          Pipeline.run,
          Effect.provide(NodePostgres.layer({ url: Redacted.make(pgUrl), schema }))
        )
      )
    )
    process.stdout.write(
      JSON.stringify({
        rows: n,
        written: r.value.records.written,
        seconds: r.seconds,
        rssBeforeMB: Math.round(before / 2 ** 20),
        peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024)
      })
    )
  } finally {
    await admin.query(`DROP SCHEMA ${schema} CASCADE`)
    await admin.end()
  }
}

const main = async () => {
  if (process.argv[2] === "--rss") return rssChild(Number(process.argv[3]))
  const n = Number(process.argv[2] ?? 1_000_000)
  console.log(`node ${process.version}, ${n.toLocaleString("en")} rows per case`)
  const rows = [...(await pgBench(n)), ...(await mysqlBench(n))]
  const rss = [1_000_000, 5_000_000].map((size) => {
    const out = execFileSync(process.execPath, [import.meta.filename, "--rss", String(size)], { encoding: "utf8" })
    return JSON.parse(out) as { rows: number; seconds: number; peakRssMB: number; rssBeforeMB: number }
  })
  const fmt = (x: number) => Math.round(x).toLocaleString("en")
  console.log(`median of ${RUNS} runs (best in parentheses)`)
  console.log("| system | case | rows | s | records/s | of raw |")
  console.log("|---|---|---|---|---|---|")
  for (const r of rows)
    console.log(
      `| ${r.system} | ${r.case} | ${fmt(r.rows)} | ${r.seconds.toFixed(2)} | ${fmt(r.recordsPerSecond)} (${fmt(r.bestRecordsPerSecond)}) | ${r.ofRaw === undefined ? "—" : `${Math.round(r.ofRaw * 100)} %`} |`
    )
  for (const r of rss)
    console.log(
      `peak RSS, PostgreSQL → PostgreSQL append of ${fmt(r.rows)} rows: ${r.peakRssMB} MB (${fmt(r.rows / r.seconds)} records/s)`
    )
  const dir = join(import.meta.dirname, "results")
  mkdirSync(dir, { recursive: true })
  writeFileSync(
    join(dir, "sql.json"),
    `${JSON.stringify({ date: new Date().toISOString(), node: process.version, runs: RUNS, rows, rss }, null, 2)}\n`
  )
  console.log(`wrote ${join(dir, "sql.json")}`)
}

await main()
