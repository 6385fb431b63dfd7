/**
 * Micro-benchmark of the two CEL engines in package.json (`@marcbachmann/cel-js`, `@bufbuild/cel`) against a
 * hand-written JS closure, over 1M records shaped like payment events. Each expression is compiled once, then
 * evaluated over every record; the table shows compile time, evaluations per second and the slowdown against the
 * closure measured in the same process. The rows "effect-etl Expression" measure `src/expr/Expression.ts` (the
 * chosen engine plus value conversion and error capture) on the same records.
 *
 * Run: `node bench/cel.ts [records] [runs]` (defaults 1000000 and 5). Results are also written to
 * `bench/results/cel.json`. `@bufbuild/cel` is loaded dynamically, so the benchmark still type-checks and runs (without
 * its rows) once that package is removed from package.json.
 *
 * @since 0.1.0
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Environment } from "@marcbachmann/cel-js"
import * as Result from "effect/Result"
import * as Expression from "../src/expr/Expression.ts"

/** A record of the benchmark's input. */
interface Txn {
  readonly transactionId: string
  readonly userId: string
  readonly amount: number
  readonly currency: string
  readonly status: string
  readonly eventTime: Date
}

/** One benchmark case: an expression and the equivalent hand-written closure. */
interface Case {
  readonly name: string
  readonly source: string
  readonly baseline: (r: Txn) => unknown
}

/** One measured (case, engine) pair. */
interface Row {
  readonly case: string
  readonly engine: string
  readonly compileFirstUs: number
  readonly compileMedianUs: number
  readonly evalsPerSec: number
  readonly slowdownVsJs: number
  readonly checksum: number
}

const N = Number(process.argv[2] ?? 1_000_000)
const RUNS = Number(process.argv[3] ?? 5)
const COMPILES = 200

const cases: ReadonlyArray<Case> = [
  {
    name: "(a) filter",
    source: `amount > 100.0 && status == "settled"`,
    baseline: (r) => r.amount > 100.0 && r.status === "settled"
  },
  { name: "(b) derived", source: "amount * 1.2", baseline: (r) => r.amount * 1.2 },
  {
    name: "(c) string op",
    source: `userId.startsWith("u1") || currency in ["EUR", "USD"]`,
    baseline: (r) => r.userId.startsWith("u1") || r.currency === "EUR" || r.currency === "USD"
  },
  {
    name: "(d) timestamp (extra)",
    source: `eventTime > timestamp("2026-01-01T00:00:00Z")`,
    baseline: (r) => r.eventTime.getTime() > 1767225600000
  }
]

// Deterministic data: a small LCG so every run sees the same records.
const makeRecords = (n: number): ReadonlyArray<Txn> => {
  let seed = 42
  const rnd = () => {
    seed = (seed * 1664525 + 1013904223) >>> 0
    return seed / 4294967296
  }
  const currencies = ["EUR", "USD", "GBP", "CHF"]
  const statuses = ["settled", "pending", "failed"]
  const start = Date.parse("2025-10-01T00:00:00Z")
  const out: Array<Txn> = new Array(n)
  for (let i = 0; i < n; i++) {
    out[i] = {
      transactionId: `tx-${i.toString(36).padStart(8, "0")}`,
      userId: `u${Math.floor(rnd() * 1000)}`,
      amount: Math.round(rnd() * 50_000) / 100,
      currency: currencies[Math.floor(rnd() * currencies.length)]!,
      status: statuses[Math.floor(rnd() * statuses.length)]!,
      eventTime: new Date(start + Math.floor(rnd() * 180 * 86_400_000))
    }
  }
  return out
}

// Sums results into one number so the work cannot be optimised away and engines can be checked against each other.
const fold = (acc: number, v: unknown): number =>
  v === true ? acc + 1 : typeof v === "number" ? acc + v : typeof v === "bigint" ? acc + Number(v) : acc

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

const timeCompile = (compileOnce: () => unknown): { readonly first: number; readonly median: number } => {
  const t0 = performance.now()
  compileOnce()
  const first = (performance.now() - t0) * 1000
  const samples: Array<number> = []
  for (let i = 0; i < COMPILES; i++) {
    const t = performance.now()
    compileOnce()
    samples.push((performance.now() - t) * 1000)
  }
  return { first, median: median(samples) }
}

const timeEval = (
  records: ReadonlyArray<Txn>,
  evaluate: (r: Txn) => unknown
): { readonly perSec: number; readonly checksum: number } => {
  let checksum = 0
  for (let i = 0; i < Math.min(records.length, 100_000); i++) checksum = fold(checksum, evaluate(records[i]!))
  const times: Array<number> = []
  for (let run = 0; run < RUNS; run++) {
    checksum = 0
    const t0 = performance.now()
    for (let i = 0; i < records.length; i++) checksum = fold(checksum, evaluate(records[i]!))
    times.push(performance.now() - t0)
  }
  return { perSec: records.length / (median(times) / 1000), checksum }
}

/** An engine under test: how to compile a source into a per-record function. */
interface Engine {
  readonly name: string
  readonly compile: (source: string) => (r: Txn) => unknown
}

/** The part of `@bufbuild/cel` (and `@bufbuild/protobuf/wkt`) the benchmark uses, declared locally. */
interface BufbuildCel {
  readonly celEnv: () => object
  readonly parse: (source: string) => object
  readonly plan: (env: object, expr: object) => (bindings: Readonly<Record<string, unknown>>) => unknown
  readonly isCelError: (u: unknown) => boolean
  readonly timestampFromDate: (date: Date) => object
}

const loadBufbuild = async (): Promise<BufbuildCel | undefined> => {
  // A computed specifier keeps tsc from resolving the packages, which may be uninstalled.
  const specifiers = ["@bufbuild/cel", "@bufbuild/protobuf/wkt"]
  try {
    const [cel, wkt] = await Promise.all(specifiers.map((s) => import(s)))
    return { ...cel, timestampFromDate: wkt.timestampFromDate } as BufbuildCel
  } catch {
    return undefined
  }
}

const marcEnv = new Environment({ unlistedVariablesAreDyn: true })

const marcbachmann: Engine = {
  name: "@marcbachmann/cel-js 8.0.0",
  compile: (source) => {
    const parsed = marcEnv.parse(source)
    // check() caches the inferred types on the AST; without it every call re-checks.
    parsed.check()
    return (r) => parsed(r)
  }
}

const bufbuild = (lib: BufbuildCel): Engine => {
  const env = lib.celEnv()
  return {
    name: "@bufbuild/cel 0.6.1",
    compile: (source) => {
      const run = lib.plan(env, lib.parse(source))
      // bufbuild takes plain objects but not Date: a timestamp must be a protobuf Timestamp message, converted per
      // record (only when the expression uses eventTime, which is what a wrapper would have to do too).
      if (source.includes("eventTime")) {
        return (r) => {
          const v = run({ ...r, eventTime: lib.timestampFromDate(r.eventTime) })
          return lib.isCelError(v) ? undefined : v
        }
      }
      return (r) => {
        const v = run(r as unknown as Readonly<Record<string, unknown>>)
        return lib.isCelError(v) ? undefined : v
      }
    }
  }
}

const variables = ["transactionId", "userId", "amount", "currency", "status", "eventTime"]

const wrapperEvaluate: Engine = {
  name: "effect-etl Expression.evaluate",
  compile: (source) => {
    const compiled = Result.getOrThrow(Expression.compileResult(source))
    return (r) => compiled.evaluate(r as unknown as Readonly<Record<string, unknown>>)
  }
}

const wrapperPredicate: Engine = {
  name: "effect-etl Expression predicate (+variables)",
  compile: (source) => {
    const predicate = Result.getOrThrow(Expression.compilePredicateResult(source, { variables }))
    return (r) => predicate(r as unknown as Readonly<Record<string, unknown>>)
  }
}

const main = async (): Promise<void> => {
  const lib = await loadBufbuild()
  if (lib === undefined) console.log("@bufbuild/cel is not installed: its rows are skipped\n")
  const engines = [marcbachmann, ...(lib === undefined ? [] : [bufbuild(lib)]), wrapperEvaluate]
  const tGen = performance.now()
  const records = makeRecords(N)
  console.log(
    `node ${process.version}, ${N.toLocaleString("en")} records (generated in ${Math.round(performance.now() - tGen)} ms), median of ${RUNS} runs\n`
  )

  // Cost of building an engine environment, paid once per process (cel-js) or per pipeline.
  const envSetup = {
    marcbachmannEnvironmentUs: timeCompile(() => new Environment({ unlistedVariablesAreDyn: true })).median,
    bufbuildCelEnvUs: lib === undefined ? undefined : timeCompile(() => lib.celEnv()).median
  }

  const rows: Array<Row> = []
  for (const c of cases) {
    const base = timeEval(records, c.baseline)
    rows.push({
      case: c.name,
      engine: "plain JS closure",
      compileFirstUs: 0,
      compileMedianUs: 0,
      evalsPerSec: base.perSec,
      slowdownVsJs: 1,
      checksum: base.checksum
    })
    for (const e of c.source === cases[1]!.source ? engines : [...engines, wrapperPredicate]) {
      const compileTime = timeCompile(() => e.compile(c.source))
      const r = timeEval(records, e.compile(c.source))
      rows.push({
        case: c.name,
        engine: e.name,
        compileFirstUs: compileTime.first,
        compileMedianUs: compileTime.median,
        evalsPerSec: r.perSec,
        slowdownVsJs: base.perSec / r.perSec,
        checksum: r.checksum
      })
    }
  }

  const fmt = (n: number, digits = 1) => n.toLocaleString("en", { maximumFractionDigits: digits })
  const header = ["case", "engine", "compile µs (first / median)", "evals/s", "× slower than JS", "checksum"]
  const body = rows.map((r) => [
    r.case,
    r.engine,
    r.compileMedianUs === 0 ? "—" : `${fmt(r.compileFirstUs, 0)} / ${fmt(r.compileMedianUs)}`,
    `${fmt(r.evalsPerSec / 1e6, 2)} M`,
    r.slowdownVsJs === 1 ? "1" : fmt(r.slowdownVsJs),
    fmt(r.checksum, 2)
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`
  console.log(line(header))
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`)
  for (const b of body) console.log(line(b))
  console.log(
    `\nenvironment setup (median): cel-js new Environment ${fmt(envSetup.marcbachmannEnvironmentUs)} µs, bufbuild celEnv ${envSetup.bufbuildCelEnvUs === undefined ? "—" : fmt(envSetup.bufbuildCelEnvUs)} µs`
  )

  const dir = join(import.meta.dirname, "results")
  mkdirSync(dir, { recursive: true })
  writeFileSync(
    join(dir, "cel.json"),
    `${JSON.stringify({ date: new Date().toISOString(), node: process.version, records: N, runs: RUNS, envSetup, rows }, null, 2)}\n`
  )
  console.log(`\nwrote ${join(dir, "cel.json")}`)
}

await main()
