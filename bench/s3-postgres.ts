/**
 * The S3 → PostgreSQL benchmark: N (default 1M) Avro transactions in Avro (deflate) objects on S3, loaded into a
 * PostgreSQL table by a config-built pipeline (named `s3` and `postgres` connections; S3 source with Avro decode and
 * validation against `schemas/transaction.avsc` → PostgreSQL append through COPY), beside the raw GET of the same
 * objects with the AWS SDK (every byte read, nothing decoded) measured in the same run. Each case runs in its own
 * process so its peak RSS is its own. The S3 server is the test one (`test/support/S3Server.ts`, or yours via
 * `ETL_TEST_S3_ENDPOINT` + `ETL_TEST_S3_ACCESS_KEY` / `ETL_TEST_S3_SECRET_KEY`); PostgreSQL is `ETL_TEST_PG_URL`
 * (default the local server), in a schema `etl_bench_*` dropped at the end.
 *
 *   node bench/s3-postgres.ts                    # writes bench/results/s3-postgres.json
 *   BENCH_RECORDS=200000 node bench/s3-postgres.ts
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import type { Readable } from "node:stream"
import { S3Client as AwsS3Client, GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as Build from "../src/config/Build.ts"
import * as Load from "../src/config/Load.ts"
import * as Records from "../src/config/Records.ts"
import * as NodeFileStore from "../src/connectors/file/NodeFileStore.ts"
import * as NodePostgres from "../src/connectors/postgres/NodePostgres.ts"
import * as NodeS3 from "../src/connectors/s3/NodeS3.ts"
import * as S3 from "../src/connectors/s3/S3.ts"
import { S3Client } from "../src/connectors/s3/S3Client.ts"
import * as Batch from "../src/core/Batch.ts"
import * as Source from "../src/core/Source.ts"
import * as Pipeline from "../src/pipeline/Pipeline.ts"
import * as AvroBridge from "../src/schema/AvroBridge.ts"
import type * as AvroSchema from "../src/schema/AvroSchema.ts"
import * as SchemaRegistry from "../src/schema/SchemaRegistry.ts"
import * as S3Server from "../test/support/S3Server.ts"
import { makeTx, type Tx } from "./support/Transactions.ts"

const root = nodePath.resolve(import.meta.dirname, "..")
const records = Number(process.env.BENCH_RECORDS ?? 1_000_000)
const pgUrl = process.env.ETL_TEST_PG_URL ?? "postgres://root@127.0.0.1:5432/test"
const avsc = JSON.parse(
  fs.readFileSync(nodePath.join(root, "schemas", "transaction.avsc"), "utf8")
) as AvroSchema.Schema

interface Env {
  readonly endpoint: string
  readonly accessKey: string
  readonly secretKey: string
  readonly bucket: string
  readonly schema: string
}

const prefix = "transactions/"

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

/** Writes the transactions as Avro deflate objects of 250k records under `transactions/`. */
const seed = (env: Env) =>
  Effect.gen(function* () {
    const per = 10_000
    const batches = Math.ceil(records / per)
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
    const schema = {
      name: "transaction",
      fields: undefined,
      validate: (v: unknown) => ({ ok: true as const, value: v as Tx }),
      avro: AvroBridge.toAvroType(avsc)
    }
    return yield* Pipeline.from(source).pipe(
      Pipeline.to(
        S3.sink<Tx>({
          bucket: env.bucket,
          path: prefix,
          format: { type: "avro", codec: "deflate" },
          mode: "overwrite",
          schema,
          maxRecordsPerObject: 250_000
        })
      ),
      Pipeline.run
    )
  }).pipe(Effect.provide(s3Layer(env)))

/** The raw baseline: ListObjectsV2 + GetObject of every object (4 at once), every byte read, nothing decoded. */
const raw = async (env: Env) => {
  const sdk = new AwsS3Client({
    endpoint: env.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: env.accessKey, secretAccessKey: env.secretKey },
    // As NodeS3: S3-compatible servers may not implement the newer default checksums.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED"
  })
  const started = performance.now()
  const listed = await sdk.send(new ListObjectsV2Command({ Bucket: env.bucket, Prefix: prefix }))
  const keys = (listed.Contents ?? []).map((o) => o.Key!).filter((k) => k.endsWith(".avro"))
  let bytes = 0
  let next = 0
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++]!
      const object = await sdk.send(new GetObjectCommand({ Bucket: env.bucket, Key: key }))
      for await (const chunk of object.Body as Readable) bytes += (chunk as Buffer).length
    }
  }
  await Promise.all([worker(), worker(), worker(), worker()])
  const seconds = (performance.now() - started) / 1000
  sdk.destroy()
  return { records, objects: keys.length, bytes, seconds }
}

/** effect-etl: a config with named connections, S3 Avro objects → validate against the contract → PostgreSQL COPY. */
const etl = (env: Env) =>
  Effect.gen(function* () {
    const file = "bench/s3-postgres (inline config)"
    const config = yield* Load.decode(file, {
      name: "s3-to-postgres",
      connections: {
        lake: {
          type: "s3",
          endpoint: env.endpoint,
          path_style: true,
          access_key_id: env.accessKey,
          secret_access_key: env.secretKey
        },
        warehouse: { type: "postgres", url: pgUrl, schema: env.schema, pool_size: 2 }
      },
      source: {
        type: "s3",
        connection: "lake",
        bucket: env.bucket,
        path: prefix,
        format: { type: "avro" },
        schema: "transaction",
        batch_size: 10_000
      },
      sink: {
        type: "postgres",
        connection: "warehouse",
        table: "transactions",
        mode: "append",
        schema: "transaction",
        create_if_missing: true
      }
    })
    const registry = yield* SchemaRegistry.SchemaRegistry
    const pipeline = yield* Build.build(config, { file, schema: Records.lookup(registry, file) })
    const started = performance.now()
    const report = yield* Pipeline.run(pipeline).pipe(
      Effect.provide(Layer.merge(Build.connections(config), NodeFileStore.layer))
    )
    const seconds = (performance.now() - started) / 1000
    const [count] = yield* NodePostgres.execute(
      { url: Redacted.make(pgUrl) },
      `SELECT count(*)::text AS n FROM "${env.schema}".transactions`
    )
    return { records: report.records.read, written: report.records.written, rows: Number(count?.n), seconds }
  }).pipe(Effect.provide(SchemaRegistry.layer(nodePath.join(root, "schemas"))), Effect.provide(Logger.layer([])))

const caseName = process.argv[2]
if (caseName === "raw" || caseName === "etl") {
  const env = JSON.parse(process.env.BENCH_ENV ?? "{}") as Env
  const peak = rssPeak()
  const result = caseName === "raw" ? await raw(env) : await Effect.runPromise(etl(env))
  console.log(JSON.stringify({ ...result, peakRssMb: peak() }))
  process.exit(0)
}

const s3 = await S3Server.start()
const admin = { url: Redacted.make(pgUrl) }
const env: Env = {
  endpoint: s3.endpoint,
  accessKey: s3.accessKey,
  secretKey: s3.secretKey,
  bucket: `bench-${crypto.randomUUID().slice(0, 8)}`,
  schema: `etl_bench_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`
}
try {
  await Effect.runPromise(NodePostgres.execute(admin, `CREATE SCHEMA "${env.schema}"`))
  await Effect.runPromise(S3Client.use((c) => c.createBucket(env.bucket)).pipe(Effect.provide(s3Layer(env))))
  const seedStarted = performance.now()
  await Effect.runPromise(seed(env).pipe(Effect.provide(Logger.layer([]))))
  const seedSeconds = (performance.now() - seedStarted) / 1000
  console.log(`seeded ${records} Avro transactions into S3 in ${seedSeconds.toFixed(1)} s`)
  const run = (name: string) => {
    const child = spawnSync(process.execPath, [import.meta.filename, name], {
      env: { ...process.env, BENCH_ENV: JSON.stringify(env), BENCH_RECORDS: String(records) },
      encoding: "utf8",
      maxBuffer: 16 * 1024 * 1024
    })
    if (child.status !== 0) throw new Error(`case ${name} failed: ${child.stderr}`)
    const lines = child.stdout.trim().split("\n")
    return JSON.parse(lines[lines.length - 1]!) as {
      records: number
      seconds: number
      peakRssMb: number
      bytes?: number
      objects?: number
      written?: number
      rows?: number
    }
  }
  const rawResult = run("raw")
  const etlResult = run("etl")
  const rate = (r: { records: number; seconds: number }) => Math.round(r.records / r.seconds)
  const summary = {
    records,
    node: process.version,
    seed: { seconds: seedSeconds },
    rawGet: {
      ...rawResult,
      recordsPerSecond: rate(rawResult),
      mbPerSecond: (rawResult.bytes ?? 0) / 1e6 / rawResult.seconds
    },
    effectEtl: { ...etlResult, recordsPerSecond: rate(etlResult) },
    ratio: Number((rate(etlResult) / rate(rawResult)).toFixed(4))
  }
  console.log(
    `raw GET of ${rawResult.objects} objects (${((rawResult.bytes ?? 0) / 1e6).toFixed(1)} MB): ${rate(rawResult)} records/s, peak RSS ${rawResult.peakRssMb} MB`
  )
  console.log(
    `effect-etl S3 Avro → PostgreSQL: ${rate(etlResult)} records/s (${etlResult.rows} rows in the table), peak RSS ${etlResult.peakRssMb} MB`
  )
  console.log(`ratio effect-etl / raw GET:      ${summary.ratio}`)
  fs.mkdirSync(nodePath.join(root, "bench", "results"), { recursive: true })
  fs.writeFileSync(nodePath.join(root, "bench", "results", "s3-postgres.json"), `${JSON.stringify(summary, null, 2)}\n`)
} finally {
  await Effect.runPromise(Effect.ignore(NodePostgres.execute(admin, `DROP SCHEMA "${env.schema}" CASCADE`)))
  await s3.stop()
}
