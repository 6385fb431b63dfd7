/**
 * Runs on a cluster of 3 runner processes (issue 12): a runner SIGKILLed in the middle of a part hands its shards on,
 * the part is read again from its start on another runner, and the results equal a one-process run row for row. A
 * second submission of the same run id attaches to the run and does not read again the parts it finished; a third,
 * after the end, returns the report at once. A copy into PostgreSQL, whose parts stage in tables next to the target,
 * survives a kill in the middle of a part's load the same way.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { MysqlTest, mysqlUrl, PgTest, pgUrl } from "../support/Databases.ts"
import { cli, type Proc, partsOf, startCluster, type TestCluster, waitUntil } from "./support/Cluster.ts"

const PARTS = 12

/** The report a run printed on stdout. */
const reportOf = (proc: Proc) =>
  JSON.parse(proc.stdout()) as {
    readonly status: string
    readonly records: { readonly read: number; readonly written: number }
    readonly reconciliation: { readonly ok: boolean }
  }

/** Waits for a process to end with code 0, or fails with its output. */
const succeeded = async (proc: Proc, what: string) => {
  const code = await proc.exited
  assert.strictEqual(
    code,
    0,
    `${what} exited with ${code}\n${proc.stderr().slice(-4000)}\n${proc.stdout().slice(-2000)}`
  )
}

/**
 * Submits `config` as run `runId`, SIGKILLs the first runner that starts reading a part (in the middle of that part)
 * and, with `killSubmitter`, the submission too; then starts a runner in place of the killed one.
 */
const submitAndKill = async (
  cluster: TestCluster,
  config: string,
  runId: string,
  options: { readonly killSubmitter: boolean; readonly partBytes?: number }
) => {
  const args = ["run", config, "--cluster", cluster.url, "--run-id", runId]
  if (options.partBytes !== undefined) args.push("--part-bytes", String(options.partBytes))
  const submission = cli(args)
  let victim: (typeof cluster.runners)[number] | undefined
  let part: string | undefined
  await waitUntil(
    () => {
      for (const runner of cluster.runners) {
        if (runner.proc.process.exitCode !== null || runner.proc.process.signalCode !== null) continue
        const { started, finished } = partsOf(runner.proc.stderr())
        const open = Array.from(started).find((p) => !finished.has(p))
        if (open !== undefined) {
          victim = runner
          part = open
          return true
        }
      }
      return false
    },
    60_000,
    "a runner to start a part"
  )
  victim!.proc.process.kill("SIGKILL")
  await victim!.proc.exited
  if (options.killSubmitter) {
    submission.process.kill("SIGKILL")
    await submission.exited
  }
  // Submitted again at once (while the run goes on), when the submitter was killed.
  const before = allParts(cluster)
  const again = options.killSubmitter ? cli(args) : undefined
  await cluster.startRunner()
  return { submission, victim: victim!, part: part!, again, before }
}

/** Every runner's started and finished parts, added up (a part counts once per runner that logged it). */
const allParts = (cluster: TestCluster) => {
  const started = new Map<string, number>()
  const finished = new Map<string, number>()
  for (const runner of cluster.runners) {
    const parts = partsOf(runner.proc.stderr())
    for (const p of parts.started) started.set(p, (started.get(p) ?? 0) + 1)
    for (const p of parts.finished) finished.set(p, (finished.get(p) ?? 0) + 1)
  }
  return { started, finished }
}

layer(Layer.mergeAll(PgTest.layer, MysqlTest.layer), { timeout: 400_000, excludeTestServices: true })(
  "cluster runs (issue 12)",
  (it) => {
    it.effect(
      "a runner killed mid-part: PostgreSQL → aggregate → MySQL upsert, files → window → aggregate → PostgreSQL overwrite and PostgreSQL → filter → PostgreSQL append equal one-process runs; a run id resumes",
      () =>
        Effect.gen(function* () {
          const pgDb = yield* PgTest
          const my = yield* MysqlTest
          const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "etl-cluster-"))
          yield* pgDb.sql(
            "CREATE TABLE orders (id int PRIMARY KEY, customer text NOT NULL, amount numeric(12,2) NOT NULL, qty int)"
          )
          yield* pgDb.sql(
            "INSERT INTO orders SELECT i, 'c' || (i % 97), ((i::bigint * 7919) % 100000) / 100.0, CASE WHEN i % 17 = 0 THEN NULL ELSE i % 13 END FROM generate_series(1, 400000) i"
          )
          for (const table of ["totals_cluster", "totals_single"])
            yield* my.sql(
              `CREATE TABLE ${table} (customer varchar(16) PRIMARY KEY, orders bigint, total decimal(20,2), low decimal(12,2), high decimal(12,2), qtys bigint, mean double)`
            )
          for (const table of ["revenue_cluster", "revenue_single"])
            yield* pgDb.sql(
              `CREATE TABLE ${table} ("userId" text, currency text, "windowStart" timestamptz, "windowEnd" timestamptz, "transactionCount" bigint, "totalAmount" numeric(20,2), "maxAmount" numeric(20,2))`
            )
          yield* pgDb.sql(`INSERT INTO revenue_cluster ("userId") VALUES ('stale')`)
          const connections = {
            src: { type: "postgres", url: pgUrl, schema: pgDb.schema },
            dw: { type: "mysql", url: mysqlUrl, database: my.database }
          }
          const ordersConfig = (table: string) => {
            const file = nodePath.join(dir, `orders-${table}.json`)
            fs.writeFileSync(
              file,
              JSON.stringify({
                name: "orders-totals",
                connections,
                source: {
                  type: "postgres",
                  connection: "src",
                  table: "orders",
                  partition: { column: "id", partitions: PARTS },
                  batch_size: 1000
                },
                transforms: [
                  {
                    type: "aggregate",
                    group_by: ["customer"],
                    fields: {
                      orders: { fn: "count" },
                      total: { fn: "sum", field: "amount" },
                      low: { fn: "min", field: "amount" },
                      high: { fn: "max", field: "amount" },
                      qtys: { fn: "count_distinct", field: "qty" },
                      mean: { fn: "avg", field: "amount" }
                    }
                  }
                ],
                sink: { type: "mysql", connection: "dw", table, mode: "upsert", keys: ["customer"] }
              })
            )
            return file
          }
          // 12 files of transactions over 3 days, decimal amounts, some late and some invalid.
          const data = nodePath.join(dir, "data")
          fs.mkdirSync(data)
          for (let f = 0; f < PARTS; f++) {
            const lines: Array<string> = []
            for (let i = 0; i < 8000; i++) {
              const n = f * 8000 + i
              lines.push(
                JSON.stringify({
                  transactionId: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
                  userId: `u${n % 37}`,
                  amount: n % 501 === 0 ? "-1.00" : `${(n * 7) % 90000}.${String(n % 100).padStart(2, "0")}`,
                  currency: ["EUR", "USD", "JPY"][n % 3],
                  status: n % 5 === 0 ? "failed" : "settled",
                  eventTime: new Date(Date.UTC(2026, 10, 1) + ((n * 97) % (72 * 3600)) * 1000).toISOString(),
                  merchant: "m",
                  category: "books"
                })
              )
            }
            fs.writeFileSync(nodePath.join(data, `tx-${String(f).padStart(2, "0")}.jsonl`), `${lines.join("\n")}\n`)
          }
          const revenueConfig = (table: string) => {
            const file = nodePath.join(dir, `revenue-${table}.json`)
            fs.writeFileSync(
              file,
              JSON.stringify({
                name: "revenue",
                connections: { src: connections.src },
                source: { type: "file", path: `${data}/*.jsonl`, schema: "transaction" },
                transforms: [
                  { type: "validate", rules: [{ rule: "range", field: "amount", min: 0 }] },
                  { type: "filter", condition: 'status == "settled"' },
                  { type: "window", kind: "tumbling", time: "eventTime", size: "6 hours", allowed_lateness: "3 days" },
                  {
                    type: "aggregate",
                    group_by: ["userId", "currency", "windowStart", "windowEnd"],
                    fields: {
                      transactionCount: { fn: "count" },
                      totalAmount: { fn: "sum", field: "amount" },
                      maxAmount: { fn: "max", field: "amount" }
                    }
                  }
                ],
                sink: { type: "postgres", connection: "src", table, mode: "overwrite" },
                dead_letters: { type: "file", path: nodePath.join(dir, `rejected-${table}`), format: { type: "jsonl" } }
              })
            )
            return file
          }

          // A copy (no aggregate) into PostgreSQL: its parts stage in tables next to the target.
          for (const table of ["copied_cluster", "copied_single"])
            yield* pgDb.sql(
              `CREATE TABLE ${table} (id int, customer text NOT NULL, amount numeric(12,2) NOT NULL, qty int)`
            )
          const copyConfig = (table: string) => {
            const file = nodePath.join(dir, `copy-${table}.json`)
            fs.writeFileSync(
              file,
              JSON.stringify({
                name: "orders-copy",
                connections: { src: connections.src },
                source: {
                  type: "postgres",
                  connection: "src",
                  table: "orders",
                  partition: { column: "id", partitions: PARTS },
                  batch_size: 1000
                },
                transforms: [{ type: "filter", condition: "qty != 3" }],
                sink: { type: "postgres", connection: "src", table, mode: "append" }
              })
            )
            return file
          }

          const cluster = yield* Effect.promise(() => startCluster(pgUrl, 3))
          yield* Effect.addFinalizer(() => Effect.promise(() => cluster.close()))
          const outcome = yield* Effect.promise(async () => {
            // 1. The orders: a runner and the submission killed mid-run; the run id submitted again.
            const first = await submitAndKill(cluster, ordersConfig("totals_cluster"), "orders-1", {
              killSubmitter: true
            })
            const { before } = first
            const again = first.again!
            await succeeded(again, "the second submission")
            const after = allParts(cluster)
            // 2. The same run id once more, after its end: its report at once, nothing read.
            const third = cli(["run", ordersConfig("totals_cluster"), "--cluster", cluster.url, "--run-id", "orders-1"])
            await succeeded(third, "the third submission")
            const afterThird = allParts(cluster)
            const single = cli(["run", ordersConfig("totals_single")])
            await succeeded(single, "the one-process run of the orders")
            // 3. The files: a runner killed mid-part; the submission waits.
            const files = await submitAndKill(cluster, revenueConfig("revenue_cluster"), "revenue-1", {
              killSubmitter: false,
              partBytes: 1
            })
            await succeeded(files.submission, "the files submission")
            const singleFiles = cli(["run", revenueConfig("revenue_single")])
            await succeeded(singleFiles, "the one-process run of the files")
            // 4. The copy: a runner killed mid-part, while the part loads its staging table in the target's database.
            const copy = await submitAndKill(cluster, copyConfig("copied_cluster"), "copy-1", { killSubmitter: false })
            await succeeded(copy.submission, "the copy submission")
            const singleCopy = cli(["run", copyConfig("copied_single")])
            await succeeded(singleCopy, "the one-process run of the copy")
            return { first, before, again, after, third, afterThird, single, files, singleFiles, copy, singleCopy }
          })

          // The killed runner was reading a part; another runner read it again, from its start, to the end.
          const finishedOrders = outcome.after.finished
          assert.isFalse(partsOf(outcome.first.victim.proc.stderr()).finished.has(outcome.first.part))
          assert.isAtLeast(finishedOrders.get(outcome.first.part) ?? 0, 1, `part ${outcome.first.part} was read again`)
          // Every part was read, and a part read before the second submission was not read again by it.
          const orderParts = Array.from(finishedOrders.keys()).filter((p) => /^\d+\/12$/.test(p))
          assert.strictEqual(orderParts.length, PARTS)
          for (const p of outcome.before.finished.keys())
            if (/^\d+\/12$/.test(p))
              assert.strictEqual(outcome.after.started.get(p), outcome.before.started.get(p), `part ${p} read again`)
          for (const [p, n] of finishedOrders) assert.isAtMost(n, 2, `part ${p}`)
          // The third submission read nothing, and printed the same report.
          assert.deepStrictEqual(outcome.afterThird.started, outcome.after.started)
          assert.deepStrictEqual(reportOf(outcome.third), reportOf(outcome.again))
          const report = reportOf(outcome.again)
          assert.strictEqual(report.status, "succeeded")
          assert.strictEqual(report.records.read, 400_000)
          assert.isTrue(report.reconciliation.ok)
          assert.deepStrictEqual(reportOf(outcome.single).records, report.records)
          const totals = (table: string) =>
            my.sql(`SELECT customer, orders, total, low, high, qtys, mean FROM ${table} ORDER BY customer`)
          const clusterTotals = yield* totals("totals_cluster")
          assert.strictEqual(clusterTotals.length, 97)
          assert.deepStrictEqual(clusterTotals, yield* totals("totals_single"))

          // The files: the killed runner's part was read again elsewhere; the overwrite replaced the stale row.
          assert.isFalse(partsOf(outcome.files.victim.proc.stderr()).finished.has(outcome.files.part))
          assert.isAtLeast(allParts(cluster).finished.get(outcome.files.part) ?? 0, 1)
          const filesReport = reportOf(outcome.files.submission)
          assert.isTrue(filesReport.reconciliation.ok)
          assert.deepStrictEqual(reportOf(outcome.singleFiles).records, filesReport.records)
          const revenue = (table: string) =>
            pgDb.sql(
              `SELECT "userId", currency, "windowStart", "windowEnd", "transactionCount", "totalAmount", "maxAmount" FROM ${table} ORDER BY 1, 2, 3`
            )
          const clusterRevenue = yield* revenue("revenue_cluster")
          assert.isAbove(clusterRevenue.length, 100)
          assert.isFalse(clusterRevenue.some((r) => r.userId === "stale"))
          assert.deepStrictEqual(clusterRevenue, yield* revenue("revenue_single"))
          const rejected = (table: string) =>
            fs
              .readdirSync(nodePath.join(dir, `rejected-${table}`))
              .filter((f) => f.endsWith(".jsonl"))
              .flatMap((f) =>
                fs
                  .readFileSync(nodePath.join(dir, `rejected-${table}`, f), "utf8")
                  .split("\n")
                  .filter((l) => l !== "")
              )
          assert.strictEqual(rejected("revenue_cluster").length, rejected("revenue_single").length)
          assert.isAbove(rejected("revenue_cluster").length, 0)

          // The copy: the killed runner's part was staged again from its start; the target holds every row once, as
          // the one-process run's does, and the run's staging tables are gone.
          assert.isFalse(partsOf(outcome.copy.victim.proc.stderr()).finished.has(outcome.copy.part))
          const copyReport = reportOf(outcome.copy.submission)
          assert.isTrue(copyReport.reconciliation.ok)
          assert.deepStrictEqual(reportOf(outcome.singleCopy).records, copyReport.records)
          const copied = (table: string) =>
            pgDb.sql(`SELECT count(*) AS n, count(DISTINCT id) AS ids, sum(amount) AS total FROM ${table}`)
          const copiedCluster = yield* copied("copied_cluster")
          assert.deepStrictEqual(copiedCluster, yield* copied("copied_single"))
          assert.strictEqual(copiedCluster[0]!.n, copiedCluster[0]!.ids)
          assert.strictEqual(Number(copiedCluster[0]!.n), copyReport.records.written)
          const differ = yield* pgDb.sql(
            "SELECT count(*) AS n FROM ((TABLE copied_cluster EXCEPT ALL TABLE copied_single) UNION ALL (TABLE copied_single EXCEPT ALL TABLE copied_cluster)) d"
          )
          assert.strictEqual(Number(differ[0]!.n), 0)
          const staged = yield* pgDb.sql(
            `SELECT count(*) AS n FROM pg_tables WHERE schemaname = '${pgDb.schema}' AND tablename LIKE 'copied%etlp%'`
          )
          assert.strictEqual(Number(staged[0]!.n), 0)
          fs.rmSync(dir, { recursive: true, force: true })
        }).pipe(Effect.scoped),
      400_000
    )
  }
)
