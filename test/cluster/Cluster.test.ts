/**
 * The cluster's pieces in one process: the run and part workflows on Effect's in-memory workflow engine, and the
 * staging tables in PostgreSQL (the runner processes are tested end to end in test/safety/ClusterKill.test.ts).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as SqlClient from "effect/sql/SqlClient"
import * as WorkflowEngine from "effect/workflow/WorkflowEngine"
import { pipelines } from "../../src/cli/ClusterCommands.ts"
import * as Cluster from "../../src/cluster/Cluster.ts"
import * as SqlStaging from "../../src/cluster/SqlStaging.ts"
import type { RunReport } from "../../src/core/RunReport.ts"
import * as Split from "../../src/runtime/Split.ts"
import { PgTest, pgUrl } from "../support/Databases.ts"

const inMemory = Cluster.layerWorkflows.pipe(
  Layer.provideMerge(WorkflowEngine.layerMemory),
  Layer.provideMerge(Layer.succeed(Split.Staging, Split.makeMemory())),
  Layer.provide(pipelines)
)

const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-workflows-"))
const data = nodePath.join(dir, "data")
fs.mkdirSync(data)
for (let f = 0; f < 4; f++)
  fs.writeFileSync(
    nodePath.join(data, `t-${f}.jsonl`),
    `${Array.from({ length: 25 }, (_, i) => JSON.stringify({ user: `u${(f * 25 + i) % 3}`, n: f === 2 && i === 4 ? -1 : i })).join("\n")}\n`
  )

const request = (name: string, fields: Record<string, unknown>): Cluster.RunRequest => {
  const text = JSON.stringify({ name, ...fields })
  return { runId: `${name}-${crypto.randomUUID()}`, file: `${name}.json`, text, schemas: "", partBytes: 1 }
}

const totals = (out: string, extra: Record<string, unknown> = {}) =>
  request("totals", {
    source: { type: "file", path: `${data}/*.jsonl` },
    transforms: [
      { type: "aggregate", group_by: ["user"], fields: { rows: { fn: "count" }, sum: { fn: "sum", field: "n" } } }
    ],
    sink: { type: "file", path: nodePath.join(dir, out), format: { type: "jsonl" }, mode: "overwrite" },
    ...extra
  })

const readJsonl = (path: string) =>
  fs
    .readdirSync(path)
    .filter((f) => f.endsWith(".jsonl"))
    .flatMap((f) =>
      fs
        .readFileSync(nodePath.join(path, f), "utf8")
        .split("\n")
        .filter((l) => l !== "")
    )
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .sort((a, b) => String(a.user).localeCompare(String(b.user)))

layer(inMemory, { timeout: 60_000 })("run workflows", (it) => {
  it.effect("read every part as a workflow of its own, merge the aggregate and commit once", () =>
    Effect.gen(function* () {
      const run = totals("out-a")
      const outcome = yield* Cluster.EtlRun.execute(run)
      assert.isNull(outcome.error)
      const report = JSON.parse(outcome.report!) as {
        status: string
        records: { read: number; written: number }
        reconciliation: { ok: boolean }
      }
      assert.strictEqual(report.status, "succeeded")
      assert.strictEqual(report.records.read, 100)
      assert.isTrue(report.reconciliation.ok)
      const rows = readJsonl(nodePath.join(dir, "out-a"))
      assert.deepStrictEqual(
        rows.map((r) => [r.user, r.rows]),
        [
          ["u0", 34],
          ["u1", 33],
          ["u2", 33]
        ]
      )
      assert.strictEqual(
        rows.reduce((s, r) => s + (r.sum as number), 0),
        4 * ((24 * 25) / 2) - 5
      )
      // The same run id again: the same outcome, from the workflow's stored result.
      const again = yield* Cluster.EtlRun.execute(run)
      assert.deepStrictEqual(again, outcome)
    })
  )

  it.effect("fail the run, naming the part, when a part fails for a data reason", () =>
    Effect.gen(function* () {
      const outcome = yield* Cluster.EtlRun.execute(
        totals("out-b", { transforms: [{ type: "validate", rules: [{ rule: "range", field: "n", min: 0 }] }] })
      )
      assert.strictEqual(outcome.error?.tag, "QualityError")
      assert.include(outcome.error?.message ?? "", `part ${data}/t-2.jsonl`)
      // A report as a one-process run prints when it fails: what the other three parts read, nothing written.
      const report = JSON.parse(outcome.report!) as RunReport
      assert.strictEqual(report.status, "failed")
      assert.strictEqual(report.error?.tag, "QualityError")
      assert.include(report.error?.message ?? "", `part ${data}/t-2.jsonl`)
      assert.strictEqual(report.records.read, 75)
      assert.strictEqual(report.records.written, 0)
      assert.deepStrictEqual(
        report.stages.map((s) => [s.name, s.recordsIn]),
        [
          ["source", 75],
          ["validate", 75]
        ]
      )
      assert.isFalse(fs.existsSync(nodePath.join(dir, "out-b")))
    })
  )

  it.effect("fail with the config's problem when a runner cannot load it", () =>
    Effect.gen(function* () {
      const outcome = yield* Cluster.EtlRun.execute({ ...totals("out-c"), text: "{ not json" })
      assert.strictEqual(outcome.error?.tag, "ConfigError")
      assert.strictEqual(outcome.error?.stage, "config")
    })
  )
})

describe("staging in PostgreSQL", () => {
  layer(PgTest.layer, { timeout: 60_000 })("an append's finish run twice", (it) => {
    it.effect("commits the run's rows once into PostgreSQL (the mark in etl_offsets, in the same transaction)", () =>
      Effect.gen(function* () {
        const db = yield* PgTest
        yield* db.sql("CREATE TABLE src (id int PRIMARY KEY, v text)")
        yield* db.sql("INSERT INTO src SELECT i, 'v' || i FROM generate_series(1, 300) i")
        yield* db.sql("CREATE TABLE dst (id int, v text)")
        const text = JSON.stringify({
          name: "append-twice",
          connections: { db: { type: "postgres", url: pgUrl, schema: db.schema } },
          source: { type: "postgres", connection: "db", table: "src", partition: { column: "id", partitions: 4 } },
          sink: { type: "postgres", connection: "db", table: "dst", mode: "append" }
        })
        const loaded = yield* Effect.orDie(
          Effect.gen(function* () {
            const r = { runId: "x", file: "append-twice.json", text, schemas: "", partBytes: 1 }
            return yield* (yield* Cluster.Pipelines).load(r)
          }).pipe(Effect.provide(pipelines))
        )
        const p = loaded.pipeline
        const count = Effect.map(db.sql("SELECT count(*)::int AS n FROM dst"), (rows) => Number(rows[0]!.n))
        yield* Effect.gen(function* () {
          const parts = yield* p.split!({ targetBytes: 1 })
          assert.strictEqual(parts.length, 4)
          const results = yield* Effect.forEach(parts, (part, index) => Split.readPart(p, { runId: "r1", part, index }))
          const first = yield* Split.finish(p, { runId: "r1", parts, results })
          assert.isUndefined(first.error)
          assert.strictEqual(yield* count, 300)
          const again = yield* Split.finish(p, { runId: "r1", parts, results })
          assert.isUndefined(again.error)
          assert.isTrue(again.report.reconciliation.ok)
          assert.strictEqual(yield* count, 300, "the second finish wrote nothing")
        }).pipe(
          Effect.provide(
            Layer.merge(loaded.layer as Layer.Layer<never>, Layer.succeed(Split.Staging, Split.makeMemory()))
          ),
          Effect.orDie
        ) as Effect.Effect<void>
      })
    )
  })

  layer(PgTest.layer, { timeout: 60_000 })("SqlStaging", (it) => {
    it.effect("keeps only a part's last committed read, pages through it in order, and clears a run", () =>
      Effect.gen(function* () {
        const db = yield* PgTest
        const client = PgClient.layer({
          url: Redacted.make(pgUrl),
          startupParameters: { search_path: db.schema }
        })
        yield* Effect.gen(function* () {
          const staging = yield* SqlStaging.make
          const sql = yield* SqlClient.SqlClient
          const stage = (values: ReadonlyArray<ReadonlyArray<unknown>>, commit: boolean) =>
            Effect.scoped(
              Effect.gen(function* () {
                const writer = yield* staging.open("run-1", "p/1", "records")
                for (const batch of values) yield* writer.write(batch)
                if (commit) yield* writer.commit
              })
            )
          yield* stage([[1], [2]], true)
          // A read that dies before its commit leaves nothing visible, and nothing behind.
          yield* stage([[99]], false)
          const batches = Array.from({ length: 20 }, (_, i) => [{ i, at: new Date(i * 1000), big: BigInt(i) }])
          yield* stage(batches, true)
          const read = yield* Stream.runCollect(staging.read("run-1", "p/1", "records"))
          assert.deepStrictEqual(Array.from(read), batches)
          const rows = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM etl_staging`
          assert.strictEqual(rows[0]!.n, 20)
          assert.deepStrictEqual(Array.from(yield* Stream.runCollect(staging.read("run-1", "p/2", "records"))), [])
          yield* staging.clear("run-1")
          assert.deepStrictEqual(Array.from(yield* Stream.runCollect(staging.read("run-1", "p/1", "records"))), [])
          const left = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM etl_staged`
          assert.strictEqual(left[0]!.n, 0)
        }).pipe(Effect.provide(Layer.orDie(client)))
      })
    )
  })
})
