/**
 * The local-file pipeline benchmark: 1M transactions, JSON Lines → validate / filter / derive → Avro (deflate), the
 * quickstart pipeline at scale, beside the same work done with plain Node streams and avsc (no framework) in the same
 * run. Each case runs in its own process so that its peak RSS is its own.
 *
 *   node bench/file.ts                # all cases, writes bench/results/file.json
 *   BENCH_RECORDS=200000 node bench/file.ts
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { pipeline as pump } from "node:stream/promises"
import avro from "avsc"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Transactions from "../scripts/transactions.ts"
import { loadConfigText, services } from "../src/cli/Shared.ts"
import * as ThreadWorker from "../src/cli/ThreadWorker.ts"
import type { Pipeline } from "../src/core/Plan.ts"
import * as Logging from "../src/observability/Logging.ts"
import * as Threads from "../src/runtime/Threads.ts"
import * as AvroBridge from "../src/schema/AvroBridge.ts"
import type * as AvroSchema from "../src/schema/AvroSchema.ts"
import * as Redaction from "../src/secrets/Redaction.ts"

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

/** The input as `parts` JSON Lines files of equal line counts (the "complex" cases read a directory of files). */
const inputFiles = (parts: number): string => {
  const dir = nodePath.join(work, `transactions-${records}-in-${parts}`)
  if (fs.existsSync(nodePath.join(dir, "_SUCCESS"))) return dir
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  const lines = fs
    .readFileSync(input, "utf8")
    .split("\n")
    .filter((line) => line !== "")
  const per = Math.ceil(lines.length / parts)
  for (let i = 0; i < parts; i++)
    fs.writeFileSync(nodePath.join(dir, `part-${i}.jsonl`), `${lines.slice(i * per, (i + 1) * per).join("\n")}\n`)
  fs.writeFileSync(nodePath.join(dir, "_SUCCESS"), "")
  return dir
}

/**
 * An example config pointed at the benchmark data, built and run by the framework as the command line runs it: on
 * `threads` threads (`Threads.run`: 1 is the calling thread alone).
 */
const framework = async (
  example: "quickstart" | "daily-revenue",
  threads: number,
  half?: string | undefined
): Promise<number> => {
  const config = JSON.parse(fs.readFileSync(nodePath.join(root, `examples/${example}.json`), "utf8"))
  config.source.path =
    example === "quickstart"
      ? half === undefined
        ? input
        : nodePath.join(inputFiles(2), `part-${half}.jsonl`)
      : inputFiles(8)
  if (example === "daily-revenue") config.source.format = { type: "jsonl" }
  config.sink.path = nodePath.join(work, `${example}-out${half ?? ""}`)
  config.sink.format = { type: "avro", codec }
  config.dead_letters.path = nodePath.join(work, `${example}-dead${half ?? ""}`)
  const text = JSON.stringify(config)
  const schemas = nodePath.join(root, "schemas")
  const program = Effect.gen(function* () {
    const { pipeline, connections } = yield* loadConfigText("bench.json", text, schemas)
    const { report } = yield* Threads.run(pipeline as Pipeline<unknown, never>, {
      threads,
      worker: ThreadWorker.script,
      load: { kind: "config", file: "bench.json", text, schemas, log: { level: "Error", format: "json" } }
    }).pipe(Effect.provide(connections as Layer.Layer<never>))
    if (report.status !== "succeeded") return yield* Effect.die(`the run failed: ${report.error?.message}`)
    return report
  }).pipe(
    Effect.provide(Layer.mergeAll(services(schemas), Logging.layer("Error"))),
    Effect.provideService(Redaction.Secrets, Redaction.registry())
  )
  const report = await Effect.runPromise(program)
  return report.records.written
}

const runCase = async (name: string): Promise<CaseResult> => {
  const started = performance.now()
  const [kind, threads] = name.split("@") as [string, string | undefined]
  const written =
    kind === "raw"
      ? await raw()
      : kind === "half"
        ? await framework("quickstart", 1, threads)
        : await framework(kind === "complex" ? "daily-revenue" : "quickstart", Number(threads ?? "1"))
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

/**
 * The machine's ceiling for two workers: the 1-thread pipeline in two processes at once, each on half the input
 * (separate heaps and collectors, nothing shared): records/s over the longer of the two runs. A run on 2 threads cannot
 * beat it by much.
 */
const twoProcesses = async (): Promise<CaseResult> => {
  const halves = await Promise.all(
    ["0", "1"].map(
      (half) =>
        new Promise<CaseResult>((resolve, reject) => {
          const child = spawn(process.execPath, [import.meta.filename, `half@${half}`], { env: process.env })
          let out = ""
          child.stdout.on("data", (chunk: Buffer) => {
            out += chunk.toString()
          })
          child.on("error", reject)
          child.on("exit", (code) =>
            code === 0 ? resolve(JSON.parse(out) as CaseResult) : reject(new Error(`half ${half} failed`))
          )
        })
    )
  )
  // Each half times its own run (after loading its modules, as the other cases do); they run at the same time.
  const seconds = Math.max(...halves.map((r) => r.seconds))
  return {
    name: "two processes",
    records,
    written: halves.reduce((sum, r) => sum + r.written, 0),
    seconds: Math.round(seconds * 1000) / 1000,
    recordsPerSecond: Math.round(records / seconds),
    peakRssMb: halves.reduce((sum, r) => sum + r.peakRssMb, 0)
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
  inputFiles(2)
  inputFiles(8)
  const cases = ["raw", "pipeline@1", "pipeline@2", "two processes", "complex@1", "complex@2"]
  for (const name of [...cases, ...cases]) {
    if (name === "two processes") {
      results.push(await twoProcesses())
      continue
    }
    const run = spawnSync(process.execPath, [import.meta.filename, name], { encoding: "utf8", env: process.env })
    if (run.status !== 0) throw new Error(`${name} failed: ${run.stderr}`)
    results.push(JSON.parse(run.stdout) as CaseResult)
  }
  const best = (name: string) =>
    results.filter((r) => r.name === name).reduce((a, b) => (a.recordsPerSecond >= b.recordsPerSecond ? a : b))
  const rawBest = best("raw")
  const pipelineBest = best("pipeline@1")
  const ratio = (a: CaseResult, b: CaseResult) => Math.round((a.recordsPerSecond / b.recordsPerSecond) * 1000) / 1000
  const summary = {
    benchmark: "file: JSONL → validate/filter/derive → Avro",
    codec,
    node: process.version,
    date: new Date().toISOString(),
    runs: results,
    raw: rawBest,
    pipeline: pipelineBest,
    ratio: ratio(pipelineBest, rawBest),
    threads: {
      "pipeline 2 threads / raw": ratio(best("pipeline@2"), rawBest),
      "pipeline 2 threads / 1 thread": ratio(best("pipeline@2"), pipelineBest),
      "two processes on halves / 1 thread (what the machine gives two workers)": ratio(
        best("two processes"),
        pipelineBest
      ),
      "complex 2 threads / 1 thread": ratio(best("complex@2"), best("complex@1"))
    }
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
  console.log(summary.threads)
}
