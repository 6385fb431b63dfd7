/**
 * Parquet against Avro, both ways: 1M transaction records (the `transaction.avsc` schema: uuid, strings, a decimal, an
 * enum, a timestamp, two nullable strings) written to a local file through effect-etl's format encoders, then read back
 * through its decoders. Beside them, in the same run: the raw floors (generating the records without encoding them;
 * reading the file's bytes without decoding them) and @dsnp/parquetjs writing and reading the same records, the
 * library we did not pick.
 *
 * Each case runs in its own child process (so that peak RSS is its own). Records are generated batch by batch as the
 * writer pulls them, so no case holds the whole data set; the write cases leave their files for the read cases. Every
 * read case checks the same count and checksum (sum of the amounts' cents, number of nulls, sum of the timestamps).
 *
 * Run: `node bench/parquet.ts [records]` (default 1000000). Results are printed and written to
 * `bench/results/parquet.json`.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { fileURLToPath } from "node:url"
import parquetjs from "@dsnp/parquetjs"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Format from "../src/formats/Format.ts"
import * as Parquet from "../src/formats/Parquet.ts"
import * as AvroBridge from "../src/schema/AvroBridge.ts"
import type * as AvroSchema from "../src/schema/AvroSchema.ts"
import type { Tx } from "./support/Transactions.ts"

// The avsc Type a config's schema lookup gives sinks and sources (effect-etl's values: Date, BigDecimal).
const schema = AvroBridge.toAvroType(
  JSON.parse(
    fs.readFileSync(fileURLToPath(new URL("../schemas/transaction.avsc", import.meta.url)), "utf8")
  ) as AvroSchema.Schema
)

const BATCH = 4096
const START = Date.UTC(2026, 10, 1)
const statuses = ["pending", "settled", "failed", "refunded"]
const currencies = ["EUR", "USD", "GBP", "JPY"]
const categories = ["groceries", "travel", "fuel", "rent", "fun"]

const hex = (n: number, width: number) => (n >>> 0).toString(16).padStart(width, "0").slice(-width)

const record = (i: number): Tx => {
  const h = Math.imul(i + 1, 0x9e3779b1) >>> 0
  return {
    transactionId: `${hex(h, 8)}-${hex(i >>> 16, 4)}-4${hex(i, 3)}-8${hex(h >>> 20, 3)}-${hex(i, 12)}`,
    userId: `u${h % 100_000}`,
    amount: BigDecimal.make(BigInt(h % 1_000_000), 2),
    currency: currencies[h % 4]!,
    status: statuses[(h >>> 3) % 4]!,
    eventTime: new Date(START + i * 1000 + (h % 997)),
    merchant: h % 7 === 0 ? null : `merchant ${h % 5000}`,
    category: h % 3 === 0 ? null : categories[h % 5]!
  }
}

function* batches(n: number): Generator<ReadonlyArray<Tx>> {
  for (let start = 0; start < n; start += BATCH) {
    const batch: Array<Tx> = []
    for (let i = start; i < Math.min(n, start + BATCH); i++) batch.push(record(i))
    yield batch
  }
}

/** Count, cents, nulls and time of records, to check that every reader read the same thing. */
interface Checksum {
  records: number
  cents: bigint
  nulls: number
  time: number
}

const emptyChecksum = (): Checksum => ({ records: 0, cents: 0n, nulls: 0, time: 0 })

const add = (sum: Checksum, r: Tx): void => {
  sum.records++
  sum.cents += BigDecimal.scale(r.amount, 2).value
  if (r.merchant === null) sum.nulls++
  if (r.category === null) sum.nulls++
  sum.time = (sum.time + r.eventTime.getTime()) % 1_000_000_007
}

const showChecksum = (c: Checksum) => `${c.records} records, ${c.cents} cents, ${c.nulls} nulls, time ${c.time}`

type Case =
  | "write:generate-only"
  | "write:avro"
  | "write:avro-deflate"
  | "write:parquet-snappy"
  | "write:parquet-zstd"
  | "write:parquetjs-snappy"
  | "read:bytes-only"
  | "read:avro"
  | "read:avro-deflate"
  | "read:parquet-snappy"
  | "read:parquet-zstd"
  | "read:parquetjs-snappy"

interface CaseResult {
  readonly case: Case
  readonly records: number
  readonly ms: number
  readonly recordsPerSec: number
  readonly fileMb: number | undefined
  readonly peakRssMb: number
  readonly checksum: string | undefined
}

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10

const specs: Record<string, Format.FormatSpec> = {
  avro: { type: "avro", codec: "null" },
  "avro-deflate": { type: "avro", codec: "deflate" },
  "parquet-snappy": { type: "parquet", compression: "snappy" },
  "parquet-zstd": { type: "parquet", compression: "zstd" }
}

const fileOf = (dir: string, name: string) =>
  nodePath.join(dir, `${name}.${name.startsWith("avro") ? "avro" : "parquet"}`)

const writeWithEtl = (n: number, spec: Format.FormatSpec, path: string) =>
  Effect.gen(function* () {
    const fd = fs.openSync(path, "w")
    yield* Stream.fromIterable(batches(n), { chunkSize: 1 }).pipe(
      Format.encoder(spec, { avro: schema }),
      Stream.runForEach((chunk) => Effect.sync(() => fs.writeSync(fd, chunk)))
    )
    fs.closeSync(fd)
  })

const readWithEtl = (spec: Format.FormatSpec, path: string) =>
  Effect.gen(function* () {
    const sum = emptyChecksum()
    const count = (batch: ReadonlyArray<unknown>) =>
      Effect.sync(() => {
        for (const r of batch) add(sum, r as Tx)
      })
    if (spec.type === "parquet") {
      const fd = fs.openSync(path, "r")
      const file: Parquet.RangedFile<never, never> = {
        size: fs.fstatSync(fd).size,
        read: (offset, length) =>
          Effect.sync(() => {
            const buffer = new Uint8Array(length)
            fs.readSync(fd, buffer, 0, length, offset)
            return buffer
          })
      }
      yield* Stream.runForEach(Parquet.decode(file, { avro: schema }), count)
      fs.closeSync(fd)
    } else {
      const bytes = Stream.fromAsyncIterable(fs.createReadStream(path, { highWaterMark: 1 << 16 }), (e) => e).pipe(
        Stream.map((chunk) => new Uint8Array(chunk as Buffer))
      )
      yield* Stream.runForEach(bytes.pipe(Format.decoder(spec, { avro: schema })), count)
    }
    return sum
  })

const parquetjsSchema = () =>
  new parquetjs.ParquetSchema({
    transactionId: { type: "UTF8", compression: "SNAPPY" },
    userId: { type: "UTF8", compression: "SNAPPY" },
    amount: { type: "DECIMAL", precision: 18, scale: 2, compression: "SNAPPY" },
    currency: { type: "UTF8", compression: "SNAPPY" },
    status: { type: "UTF8", compression: "SNAPPY" },
    eventTime: { type: "TIMESTAMP_MILLIS", compression: "SNAPPY" },
    merchant: { type: "UTF8", optional: true, compression: "SNAPPY" },
    category: { type: "UTF8", optional: true, compression: "SNAPPY" }
  })

const writeWithParquetjs = async (n: number, path: string) => {
  const writer = await parquetjs.ParquetWriter.openFile(parquetjsSchema(), path, { rowGroupSize: 100_000 })
  for (const batch of batches(n))
    for (const r of batch)
      await writer.appendRow({
        transactionId: r.transactionId,
        userId: r.userId,
        // parquetjs takes the decimal value as a number and scales it itself.
        amount: BigDecimal.toNumberUnsafe(r.amount),
        currency: r.currency,
        status: r.status,
        eventTime: r.eventTime,
        ...(r.merchant === null ? {} : { merchant: r.merchant }),
        ...(r.category === null ? {} : { category: r.category })
      })
  await writer.close()
}

const readWithParquetjs = async (path: string) => {
  const sum = emptyChecksum()
  const reader = await parquetjs.ParquetReader.openFile(path)
  const cursor = reader.getCursor()
  for (let row = await cursor.next(); row !== null; row = await cursor.next()) {
    const r = row as Record<string, unknown>
    add(sum, {
      ...(r as unknown as Tx),
      // parquetjs reads an INT64 decimal as the scaled number (e.g. 1234.56).
      amount: BigDecimal.make(
        typeof r.amount === "bigint" ? r.amount : BigInt(Math.round((r.amount as number) * 100)),
        2
      ),
      merchant: (r.merchant as string | undefined) ?? null,
      category: (r.category as string | undefined) ?? null
    })
  }
  await reader.close()
  return sum
}

const runCase = async (which: Case, n: number, dir: string): Promise<CaseResult> => {
  const [direction, name] = which.split(":") as ["write" | "read", string]
  const path = name === "parquetjs-snappy" ? nodePath.join(dir, "parquetjs.parquet") : fileOf(dir, name)
  const started = performance.now()
  let checksum: Checksum | undefined
  if (which === "write:generate-only") {
    checksum = emptyChecksum()
    for (const batch of batches(n)) for (const r of batch) add(checksum, r)
  } else if (which === "read:bytes-only") {
    let bytes = 0
    for await (const chunk of fs.createReadStream(fileOf(dir, "avro"), { highWaterMark: 1 << 16 }))
      bytes += (chunk as Buffer).length
    if (bytes === 0) throw new Error("nothing read")
  } else if (name === "parquetjs-snappy") {
    if (direction === "write") await writeWithParquetjs(n, path)
    else checksum = await readWithParquetjs(path)
  } else if (direction === "write") await Effect.runPromise(writeWithEtl(n, specs[name]!, path))
  else checksum = await Effect.runPromise(readWithEtl(specs[name]!, path))
  const ms = performance.now() - started
  const file = which === "read:bytes-only" ? fileOf(dir, "avro") : path
  return {
    case: which,
    records: n,
    ms: Math.round(ms),
    recordsPerSec: Math.round(n / (ms / 1000)),
    fileMb: which === "write:generate-only" ? undefined : mb(fs.statSync(file).size),
    peakRssMb: mb(process.resourceUsage().maxRSS * 1024),
    checksum: checksum === undefined ? undefined : showChecksum(checksum)
  }
}

const cases: ReadonlyArray<Case> = [
  "write:generate-only",
  "write:avro",
  "write:avro-deflate",
  "write:parquet-snappy",
  "write:parquet-zstd",
  "write:parquetjs-snappy",
  "read:bytes-only",
  "read:avro",
  "read:avro-deflate",
  "read:parquet-snappy",
  "read:parquet-zstd",
  "read:parquetjs-snappy"
]

const main = async () => {
  const n = Number(process.argv[2] ?? 1_000_000)
  const child = process.argv[3] as Case | undefined
  if (child !== undefined) {
    console.log(JSON.stringify(await runCase(child, n, process.argv[4]!)))
    return
  }
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "bench-parquet-"))
  const self = fileURLToPath(import.meta.url)
  const results: Array<CaseResult> = []
  for (const which of cases) {
    const out = execFileSync(process.execPath, [self, String(n), which, dir], { encoding: "utf8", maxBuffer: 1 << 20 })
    const result = JSON.parse(out) as CaseResult
    results.push(result)
    console.error(
      `${which}: ${result.recordsPerSec.toLocaleString("en-US")} records/s, peak RSS ${result.peakRssMb} MB`
    )
  }
  const expected = results.find((r) => r.case === "write:generate-only")!.checksum
  const withoutCents = (c: string | undefined) => c?.replace(/, -?\d+ cents/, "")
  for (const r of results) {
    if (r.checksum === undefined || r.checksum === expected) continue
    // @dsnp/parquetjs takes and returns decimals as float64 numbers: its cents may differ, nothing else may.
    if (r.case.includes("parquetjs") && withoutCents(r.checksum) === withoutCents(expected)) {
      console.log(`note: ${r.case} read ${r.checksum}: its decimals went through float64`)
      continue
    }
    throw new Error(`${r.case} read ${r.checksum}, expected ${expected}`)
  }
  const floor = (direction: string) =>
    results.find((r) => r.case === (direction === "write" ? "write:generate-only" : "read:bytes-only"))!
  console.log(`Parquet and Avro, ${n.toLocaleString("en-US")} transaction records each way; checksum ${expected}`)
  console.log("| case | ms | records/s | × the raw floor's time | file MB | peak RSS MB |")
  console.log("|---|---|---|---|---|---|")
  for (const r of results) {
    const base = floor(r.case.split(":")[0]!)
    console.log(
      `| ${r.case} | ${r.ms} | ${r.recordsPerSec.toLocaleString("en-US")} | ${Math.round((r.ms / base.ms) * 10) / 10} | ${r.fileMb ?? "—"} | ${r.peakRssMb} |`
    )
  }
  fs.rmSync(dir, { recursive: true, force: true })
  const resultsDir = fileURLToPath(new URL("./results/", import.meta.url))
  fs.mkdirSync(resultsDir, { recursive: true })
  fs.writeFileSync(
    nodePath.join(resultsDir, "parquet.json"),
    `${JSON.stringify({ node: process.version, date: new Date().toISOString(), results }, null, 2)}\n`
  )
}

await main()
