/**
 * The local-file pipeline benchmark: 1M transactions, JSON Lines → validate / filter / derive → Avro (deflate), the
 * quickstart pipeline at scale, beside the same work done with plain Node streams and avsc (no framework) in the same
 * run. Each case runs in its own process so that its peak RSS is its own.
 *
 *   node bench/file.ts                # all cases, writes bench/results/file.json
 *   BENCH_RECORDS=200000 node bench/file.ts
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { pipeline as pump } from "node:stream/promises"
import avro from "avsc"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Transactions from "../scripts/transactions.ts"
import * as Build from "../src/config/Build.ts"
import * as Load from "../src/config/Load.ts"
import * as Records from "../src/config/Records.ts"
import * as NodeFileStore from "../src/connectors/file/NodeFileStore.ts"
import * as Logging from "../src/observability/Logging.ts"
import * as Runner from "../src/runtime/Runner.ts"
import * as AvroBridge from "../src/schema/AvroBridge.ts"
import type * as AvroSchema from "../src/schema/AvroSchema.ts"
import * as SchemaRegistry from "../src/schema/SchemaRegistry.ts"

const root = nodePath.resolve(import.meta.dirname, "..")
const records = Number(process.env.BENCH_RECORDS ?? 1_000_000)
const work = nodePath.join(root, ".tmp", "bench")
const input = nodePath.join(work, `transactions-${records}.jsonl`)
const codec = (process.env.BENCH_CODEC ?? "deflate") as "deflate" | "null"

interface CaseResult {
  readonly name: string
  readonly records: number
  readonly written: number
  readonly seconds: number
  readonly recordsPerSecond: number
  readonly peakRssMb: number
}

const band = (amount: BigDecimal.BigDecimal, hundred: BigDecimal.BigDecimal, thousand: BigDecimal.BigDecimal) =>
  BigDecimal.isLessThan(amount, hundred) ? "small" : BigDecimal.isLessThan(amount, thousand) ? "medium" : "large"

/** The same work without the framework: split lines, JSON.parse, convert, check, filter, derive, avsc container file. */
const raw = async (): Promise<number> => {
  const schema = JSON.parse(fs.readFileSync(nodePath.join(root, "schemas/settled-transaction.avsc"), "utf8"))
  const type = AvroBridge.toAvroType(schema as AvroSchema.Schema)
  const out = nodePath.join(work, "raw-out")
  fs.rmSync(out, { recursive: true, force: true })
  fs.mkdirSync(out, { recursive: true })
  const encoder = new avro.streams.BlockEncoder(type, { codec, writeHeader: true })
  const done = pump(encoder, fs.createWriteStream(nodePath.join(out, "part-0.avro")))
  const hundred = BigDecimal.fromNumberUnsafe(100)
  const thousand = BigDecimal.fromNumberUnsafe(1000)
  const zero = BigDecimal.fromNumberUnsafe(0)
  let written = 0
  let rest = ""
  for await (const chunk of fs.createReadStream(input, { encoding: "utf8", highWaterMark: 1 << 20 })) {
    const lines = (rest + chunk).split("\n")
    rest = lines.pop() ?? ""
    for (const line of lines) {
      let r: Record<string, unknown>
      try {
        r = JSON.parse(line) as Record<string, unknown>
      } catch {
        continue
      }
      const amount = BigDecimal.fromString(String(r.amount))
      if (amount._tag === "None" || !BigDecimal.isGreaterThan(amount.value, zero)) continue
      if (typeof r.currency !== "string" || !/^[A-Z]{3}$/.test(r.currency)) continue
      if (r.status !== "settled") continue
      const record = {
        transactionId: r.transactionId,
        userId: r.userId,
        amount: BigDecimal.scale(amount.value, 2),
        currency: r.currency,
        status: r.status,
        eventTime: new Date(r.eventTime as string),
        merchant: r.merchant ?? null,
        category: r.category ?? null,
        amountBand: band(amount.value, hundred, thousand)
      }
      if (!encoder.write(record)) await new Promise((resolve) => encoder.once("drain", resolve))
      written++
    }
  }
  encoder.end()
  await done
  return written
}

/** The quickstart config, pointed at the benchmark data, built and run by the framework. */
const framework = async (): Promise<number> => {
  const config = JSON.parse(fs.readFileSync(nodePath.join(root, "examples/quickstart.json"), "utf8"))
  config.source.path = input
  config.sink.path = nodePath.join(work, "pipeline-out")
  config.sink.format = { type: "avro", codec }
  config.dead_letters.path = nodePath.join(work, "pipeline-dead")
  const program = Effect.gen(function* () {
    const decoded = yield* Load.decode("bench", config)
    const registry = yield* SchemaRegistry.SchemaRegistry
    const pipeline = yield* Build.build(decoded, { file: "bench", schema: Records.lookup(registry, "bench") })
    return yield* Runner.run(pipeline)
  }).pipe(
    Effect.provide(
      Layer.mergeAll(NodeFileStore.layer, SchemaRegistry.layer(nodePath.join(root, "schemas")), Logging.layer("Error"))
    )
  )
  const report = await Effect.runPromise(program)
  return report.records.written
}

const runCase = async (name: string): Promise<CaseResult> => {
  const started = performance.now()
  const written = name === "raw" ? await raw() : await framework()
  const seconds = (performance.now() - started) / 1000
  return {
    name,
    records,
    written,
    seconds: Math.round(seconds * 1000) / 1000,
    recordsPerSecond: Math.round(records / seconds),
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024)
  }
}

const child = process.argv[2]
if (child !== undefined) {
  process.stdout.write(JSON.stringify(await runCase(child)))
} else {
  fs.mkdirSync(work, { recursive: true })
  if (!fs.existsSync(input)) {
    console.log(`generating ${records} transactions in ${input}`)
    Transactions.writeFile(input, records)
  }
  const results: Array<CaseResult> = []
  for (const name of ["raw", "pipeline", "raw", "pipeline"]) {
    const run = spawnSync(process.execPath, [import.meta.filename, name], { encoding: "utf8", env: process.env })
    if (run.status !== 0) throw new Error(`${name} failed: ${run.stderr}`)
    results.push(JSON.parse(run.stdout) as CaseResult)
  }
  const best = (name: string) =>
    results.filter((r) => r.name === name).reduce((a, b) => (a.recordsPerSecond >= b.recordsPerSecond ? a : b))
  const rawBest = best("raw")
  const pipelineBest = best("pipeline")
  const summary = {
    benchmark: "file: JSONL → validate/filter/derive → Avro",
    codec,
    node: process.version,
    date: new Date().toISOString(),
    runs: results,
    raw: rawBest,
    pipeline: pipelineBest,
    ratio: Math.round((pipelineBest.recordsPerSecond / rawBest.recordsPerSecond) * 1000) / 1000
  }
  fs.mkdirSync(nodePath.join(root, "bench", "results"), { recursive: true })
  fs.writeFileSync(
    nodePath.join(root, "bench", "results", `file-${codec}.json`),
    `${JSON.stringify(summary, null, 2)}\n`
  )
  console.table(results)
  console.log(
    `pipeline ${pipelineBest.recordsPerSecond} records/s, raw ${rawBest.recordsPerSecond} records/s, ratio ${summary.ratio} (codec ${codec}, ${records} records)`
  )
}
