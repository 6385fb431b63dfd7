/**
 * The "complex" pipeline of the original plan, in memory: transactions joined with users, filtered, windowed (1-hour
 * tumbling windows on event time) and aggregated per user and window — through effect-etl's typed API, beside a
 * plain-JS baseline doing the same work in one loop (hash join, filter, watermark, per-window exact decimal sums).
 *
 * The transactions are generated lazily, chunk by chunk, by a fixed-seed generator that both cases (and a third case
 * that only generates them) read as a stream: nothing holds the input, so peak RSS measures what each case keeps. The
 * rate of events is fixed (10,000 per hour of event time), so more transactions mean more windows, not larger ones,
 * and a pipeline that keeps only its open windows runs in the same memory at any size.
 *
 * Each case runs in its own child process (so that peak RSS is its own): the users are generated, one warm-up run on
 * at most 1M transactions, then the median of `runs` timed runs (wall time, and CPU time, steadier on a shared
 * machine). Both cases must produce the same rows (count and checksum of the sums).
 *
 * Run: `node bench/complex.ts [transactions] [users] [runs]` (defaults `1000000,10000000`, 100000 and 3); several
 * sizes, comma-separated, run one after the other and the peak RSS of each is compared. Results are printed and
 * written to `bench/results/complex.json`.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Stream from "effect/Stream"
import * as Sink from "../src/core/Sink.ts"
import * as Source from "../src/core/Source.ts"
import * as Pipeline from "../src/pipeline/Pipeline.ts"
import * as Agg from "../src/transforms/Aggregate.ts"
import * as Window from "../src/transforms/Window.ts"

/** A transaction of the benchmark's input. */
interface Transaction {
  readonly transactionId: string
  readonly userId: string
  readonly amount: BigDecimal.BigDecimal
  readonly currency: string
  readonly status: string
  readonly eventTime: Date
}

/** A user of the joined side. */
interface User {
  readonly id: string
  readonly name: string
  readonly country: string
  readonly tier: string
}

/** What one case measured. */
interface CaseResult {
  readonly case: "input-only" | "plain-js" | "effect-etl"
  readonly transactions: number
  readonly users: number
  readonly runs: number
  readonly medianMs: number
  readonly recordsPerSec: number
  /** The median CPU time of a run (user + system, every thread of the process): steadier than wall time on a busy machine. */
  readonly medianCpuMs: number
  readonly recordsPerCpuSec: number
  readonly outputRows: number
  readonly checksum: string
  readonly rssAtStartMb: number
  readonly peakRssMb: number
}

const HOUR = 3_600_000
const LATENESS = 5 * 60_000
const START = Date.UTC(2026, 10, 1)
/** Transactions per hour of event time, whatever their number. */
const PER_HOUR = 10_000
/** Transactions per generated chunk (one input batch). */
const CHUNK = 4096

const random = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const COUNTRIES = ["FR", "DE", "GB", "US", "JP", "BR"]
const STATUSES = ["settled", "settled", "settled", "pending", "failed", "refunded"]

const makeUsers = (u: number): Array<User> => {
  const next = random(42)
  const users: Array<User> = []
  for (let i = 0; i < u; i++)
    users.push({
      id: `u${i}`,
      name: `user ${i}`,
      country: COUNTRIES[i % COUNTRIES.length]!,
      tier: next() < 0.01 ? "blocked" : next() < 0.2 ? "gold" : "standard"
    })
  return users
}

/**
 * The `n` transactions, generated afresh in chunks of {@link CHUNK} every time it is iterated: event times advance at
 * {@link PER_HOUR} per hour, slightly out of order (within the allowed lateness); a few users (ids beyond the users
 * table) have no match, the others are skewed toward low ids.
 */
function* transactionChunks(n: number, u: number): Generator<Array<Transaction>> {
  const next = random(7)
  const step = HOUR / PER_HOUR
  // The user ids a transaction may name, made once (a source would hand out one string per record either way).
  const ids = Array.from({ length: Math.ceil(u * 1.02) }, (_, i) => `u${i}`)
  for (let from = 0; from < n; from += CHUNK) {
    const to = Math.min(n, from + CHUNK)
    const chunk: Array<Transaction> = new Array(to - from)
    for (let i = from; i < to; i++)
      chunk[i - from] = {
        transactionId: `t${i}`,
        userId: ids[Math.floor(next() ** 2 * u * 1.02)]!,
        amount: BigDecimal.make(BigInt(Math.floor(next() * 250_000) + 1), 2),
        currency: "EUR",
        status: STATUSES[Math.floor(next() * STATUSES.length)]!,
        eventTime: new Date(START + Math.floor(i * step + next() * 60_000))
      }
    yield chunk
  }
}

interface Totals {
  rows: number
  unscaled: bigint
  count: number
}

const checksumOf = (t: Totals) =>
  `${t.rows} rows, ${t.count} transactions, sum ${BigDecimal.format(BigDecimal.make(t.unscaled, 2))}`

const runPipeline = (n: number, users: ReadonlyArray<User>): Promise<Totals> => {
  const totals: Totals = { rows: 0, unscaled: 0n, count: 0 }
  const out = Sink.make<{ readonly total: BigDecimal.BigDecimal; readonly count: number }>({
    name: "count",
    type: "memory",
    description: "counts rows and sums totals",
    mode: "append",
    durability: "per-write",
    open: Effect.succeed({
      write: (rows) =>
        Effect.sync(() => {
          totals.rows += rows.length
          for (let i = 0; i < rows.length; i++) {
            const r = rows[i]!
            totals.count += r.count
            totals.unscaled += BigDecimal.scale(r.total, 2).value
          }
        }),
      commit: Effect.sync(() => ({ written: totals.rows }))
    })
  })
  const transactions = Source.fromArrays(
    "transactions",
    // One chunk (batch) per pull: by default a stream pulls 4096 elements of an iterable at once, here the whole input.
    Stream.suspend(() => Stream.fromIterable(transactionChunks(n, users.length), { chunkSize: 1 })),
    { type: "memory", description: "generated transactions" }
  )
  const pipeline = Pipeline.from(transactions).pipe(
    Pipeline.join(Source.fromIterable("users", users, { batchSize: 4096 }), {
      on: { userId: "id" },
      select: ["country", "tier"],
      maxRows: 1_000_000
    }),
    Pipeline.filter((t) => t.status === "settled" && t.tier !== "blocked"),
    Pipeline.window(Window.tumbling("1 hour", { time: "eventTime", allowedLateness: "5 minutes" })),
    Pipeline.aggregate({
      groupBy: ["userId", "country", "windowStart", "windowEnd"],
      fields: { total: Agg.sum("amount"), count: Agg.count() }
    }),
    Pipeline.to(out)
  )
  return Effect.runPromise(
    Pipeline.run(pipeline).pipe(
      Effect.flatMap((report) =>
        report.reconciliation.ok ? Effect.succeed(totals) : Effect.die(new Error("row counts do not reconcile"))
      ),
      Effect.provide(Logger.layer([]))
    )
  )
}

/** The same work in one loop: hash join, filter, watermark and per-window exact sums, windows closed in order. */
const runBaseline = (n: number, users: ReadonlyArray<User>): Totals => {
  const totals: Totals = { rows: 0, unscaled: 0n, count: 0 }
  const byId = new Map<string, User>()
  for (const u of users) byId.set(u.id, u)
  const open = new Map<number, Map<string, { unscaled: bigint; count: number }>>()
  let watermark = Number.NEGATIVE_INFINITY
  let max = Number.NEGATIVE_INFINITY
  const close = (all: boolean) => {
    const ready = Array.from(open.keys())
      .filter((start) => all || start + HOUR <= watermark)
      .sort((a, b) => a - b)
    for (const start of ready) {
      for (const acc of open.get(start)!.values()) {
        totals.rows++
        totals.count += acc.count
        totals.unscaled += acc.unscaled
      }
      open.delete(start)
    }
  }
  for (const chunk of transactionChunks(n, users.length)) {
    for (let i = 0; i < chunk.length; i++) {
      const t = chunk[i]!
      const u = byId.get(t.userId)
      if (u === undefined || t.status !== "settled" || u.tier === "blocked") continue
      const time = t.eventTime.getTime()
      if (time < watermark) continue
      if (time > max) {
        max = time
        watermark = max - LATENESS
      }
      const start = time - (time % HOUR)
      let groups = open.get(start)
      if (groups === undefined) {
        groups = new Map()
        open.set(start, groups)
      }
      const key = `${t.userId}|${u.country}`
      const acc = groups.get(key)
      const cents = BigDecimal.scale(t.amount, 2).value
      if (acc === undefined) groups.set(key, { unscaled: cents, count: 1 })
      else {
        acc.unscaled += cents
        acc.count++
      }
    }
    close(false)
  }
  close(true)
  return totals
}

/** Only the input: every transaction generated and looked at once (what both other cases pay for reading it). */
const runInput = (n: number, users: ReadonlyArray<User>): Totals => {
  const totals: Totals = { rows: 0, unscaled: 0n, count: 0 }
  for (const chunk of transactionChunks(n, users.length))
    for (let i = 0; i < chunk.length; i++) {
      const t = chunk[i]!
      if (t.status === "settled" && t.eventTime.getTime() > 0) {
        totals.count++
        totals.unscaled += t.amount.value
      }
    }
  return totals
}

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10

const CASES = ["input-only", "plain-js", "effect-etl"] as const

const runCase = async (which: CaseResult["case"], n: number, u: number, runs: number): Promise<CaseResult> => {
  const users = makeUsers(u)
  const rssAtStartMb = mb(process.memoryUsage().rss)
  const once = async (size: number) => {
    const cpu = process.cpuUsage()
    const started = performance.now()
    const totals =
      which === "plain-js"
        ? runBaseline(size, users)
        : which === "input-only"
          ? runInput(size, users)
          : await runPipeline(size, users)
    const ms = performance.now() - started
    const used = process.cpuUsage(cpu)
    return { ms, cpuMs: (used.user + used.system) / 1000, totals }
  }
  await once(Math.min(n, 1_000_000))
  const times: Array<number> = []
  const cpuTimes: Array<number> = []
  let first: Totals | undefined
  for (let i = 0; i < runs; i++) {
    const r = await once(n)
    if (first === undefined) first = r.totals
    else if (checksumOf(r.totals) !== checksumOf(first)) throw new Error("results differ between runs")
    times.push(r.ms)
    cpuTimes.push(r.cpuMs)
  }
  const medianMs = median(times)
  const medianCpuMs = median(cpuTimes)
  return {
    case: which,
    transactions: n,
    users: u,
    runs,
    medianMs: Math.round(medianMs),
    recordsPerSec: Math.round(n / (medianMs / 1000)),
    medianCpuMs: Math.round(medianCpuMs),
    recordsPerCpuSec: Math.round(n / (medianCpuMs / 1000)),
    outputRows: first!.rows,
    checksum: checksumOf(first!),
    rssAtStartMb,
    peakRssMb: mb(process.resourceUsage().maxRSS * 1024)
  }
}

const main = async () => {
  const sizes = (process.argv[2] ?? "1000000,10000000").split(",").map(Number)
  const u = Number(process.argv[3] ?? 100_000)
  const runs = Number(process.argv[4] ?? 3)
  const child = process.argv[5]
  if (child !== undefined) {
    if (!(CASES as ReadonlyArray<string>).includes(child)) throw new Error(`unknown case ${child}`)
    console.log(JSON.stringify(await runCase(child as CaseResult["case"], sizes[0]!, u, runs)))
    return
  }
  const self = fileURLToPath(import.meta.url)
  const results: Array<CaseResult> = []
  for (const n of sizes) {
    const [input, baseline, etl] = CASES.map(
      (which) =>
        JSON.parse(
          execFileSync(process.execPath, [self, String(n), String(u), String(runs), which], {
            encoding: "utf8",
            maxBuffer: 1 << 20
          })
        ) as CaseResult
    ) as [CaseResult, CaseResult, CaseResult]
    if (baseline.checksum !== etl.checksum)
      throw new Error(`the cases disagree: ${baseline.checksum} vs ${etl.checksum}`)
    results.push(input, baseline, etl)
    console.log(
      `\ncomplex pipeline: ${n.toLocaleString("en-US")} transactions ⋈ ${u.toLocaleString("en-US")} users → filter → 1h tumbling windows → aggregate per user`
    )
    console.log(`output: ${etl.checksum}`)
    console.log(
      "| case | median ms | records/s | median CPU ms | records per CPU-second | RSS at start (MB) | peak RSS (MB) |"
    )
    console.log("|---|---|---|---|---|---|---|")
    for (const r of [input, baseline, etl])
      console.log(
        `| ${r.case} | ${r.medianMs} | ${r.recordsPerSec.toLocaleString("en-US")} | ${r.medianCpuMs} | ${r.recordsPerCpuSec.toLocaleString("en-US")} | ${r.rssAtStartMb} | ${r.peakRssMb} |`
      )
    console.log(
      `effect-etl / plain-js: speed ${(etl.recordsPerSec / baseline.recordsPerSec).toFixed(2)} (per CPU-second ${(etl.recordsPerCpuSec / baseline.recordsPerCpuSec).toFixed(2)}), peak RSS ${(etl.peakRssMb / baseline.peakRssMb).toFixed(2)}`
    )
  }
  if (sizes.length > 1)
    for (const which of CASES) {
      const rows = results.filter((r) => r.case === which)
      const peaks = rows.map((r) => r.peakRssMb)
      console.log(
        `${which}: peak RSS ${rows.map((r) => `${r.peakRssMb} MB at ${r.transactions.toLocaleString("en-US")}`).join(", ")} (largest / smallest ${(Math.max(...peaks) / Math.min(...peaks)).toFixed(2)})`
      )
    }
  const dir = fileURLToPath(new URL("./results/", import.meta.url))
  mkdirSync(dir, { recursive: true })
  writeFileSync(
    `${dir}complex.json`,
    `${JSON.stringify({ date: new Date().toISOString(), node: process.version, results }, null, 2)}\n`
  )
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
