/**
 * The cluster commands end to end: `validate --parts`, `worker` and `run --cluster` against two runner processes and
 * a PostgreSQL database of the cluster's own.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import pg from "pg"
import { cli, logLines, partsOf, startCluster, waitUntil } from "../safety/support/Cluster.ts"
import { PgTest, pgUrl } from "../support/Databases.ts"

const tmp = () => fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-cluster-"))

const line = (i: number, amount: string) =>
  JSON.stringify({
    transactionId: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
    userId: `u${i % 5}`,
    amount,
    currency: "EUR",
    status: "settled",
    eventTime: new Date(Date.UTC(2026, 10, 1, 0, i)).toISOString(),
    merchant: "m",
    category: "books"
  })

/** Three files of transactions; the second holds one with a negative amount at line 3. */
const files = (dir: string) => {
  const data = nodePath.join(dir, "data")
  fs.mkdirSync(data)
  for (let f = 0; f < 3; f++) {
    const lines = Array.from({ length: 20 }, (_, i) => line(f * 20 + i, f === 1 && i === 2 ? "-5.00" : `${i}.50`))
    fs.writeFileSync(nodePath.join(data, `tx-${f}.jsonl`), `${lines.join("\n")}\n`)
  }
  return data
}

const config = (dir: string, fields: Record<string, unknown>) => {
  const file = nodePath.join(dir, `config-${crypto.randomUUID().slice(0, 8)}.json`)
  fs.writeFileSync(file, JSON.stringify({ name: "cluster-cli", ...fields }))
  return file
}

const ended = async (proc: ReturnType<typeof cli>) => ({
  code: await proc.exited,
  stdout: proc.stdout(),
  stderr: proc.stderr()
})

layer(PgTest.layer, { timeout: 240_000, excludeTestServices: true })("cluster commands", (it) => {
  it.effect("validate --parts lists the parts and the cut, without a cluster", () =>
    Effect.promise(async () => {
      const dir = tmp()
      const data = files(dir)
      const file = config(dir, {
        source: { type: "file", path: `${data}/*.jsonl`, schema: "transaction" },
        transforms: [
          { type: "filter", condition: 'status == "settled"' },
          { type: "aggregate", group_by: ["userId"], fields: { n: { fn: "count" } } }
        ],
        sink: { type: "file", path: nodePath.join(dir, "out"), format: { type: "jsonl" }, mode: "overwrite" }
      })
      const { code, stdout, stderr } = await ended(cli(["validate", file, "--parts", "--part-bytes", "1"]))
      assert.strictEqual(code, 0, stderr)
      assert.include(stdout, "parts: 3, each read through source, filter, aggregate")
      for (let f = 0; f < 3; f++) assert.include(stdout, `${data}/tx-${f}.jsonl`)
      assert.include(stdout, "finish: aggregate (merging the parts' partial states), sink, on one runner, one commit")
      // Without an aggregate, into PostgreSQL: each part stages its rows in a table next to the target.
      const copy = config(dir, {
        connections: { db: { type: "postgres", url: pgUrl } },
        source: { type: "file", path: `${data}/*.jsonl`, schema: "transaction" },
        transforms: [{ type: "filter", condition: 'status == "settled"' }],
        sink: { type: "postgres", connection: "db", table: "copied", mode: "append" }
      })
      const listed = await ended(cli(["validate", copy, "--parts", "--part-bytes", "1"]))
      assert.strictEqual(listed.code, 0, listed.stderr)
      assert.include(listed.stdout, "parts: 3, each read through source, filter, sink (staging tables next to copied)")
      assert.include(listed.stdout, "finish: sink (taking in what the parts staged), on one runner, one commit")
    })
  )

  it.effect(
    "a worker or a submission whose cluster database cannot be reached says so and exits 1",
    () =>
      Effect.promise(async () => {
        const worker = await ended(
          cli(["worker", "--cluster", "postgres://root:s3cret-pw@127.0.0.1:1/none", "--port", "34499"])
        )
        assert.strictEqual(worker.code, 1)
        assert.include(worker.stderr, "cannot reach the cluster's database 127.0.0.1:1/none")
        assert.notInclude(worker.stderr, "s3cret-pw")
        const dir = tmp()
        const submit = await ended(
          cli([
            "run",
            config(dir, {
              source: { type: "file", path: files(dir) },
              sink: { type: "file", path: dir, format: { type: "jsonl" } }
            }),
            "--cluster",
            `${pgUrl.replace(/\/[^/]*$/, "")}/no_such_database_here`
          ])
        )
        assert.strictEqual(submit.code, 1)
        assert.include(submit.stderr, 'database "no_such_database_here" does not exist')
        // A module or a bad config is refused before anything is submitted.
        const module = await ended(cli(["run", "examples/quickstart.ts", "--cluster", pgUrl]))
        assert.strictEqual(module.code, 2)
        assert.include(module.stderr, "a cluster run takes a JSON config")
        const bad = await ended(cli(["run", config(dir, { source: { type: "file" } }), "--cluster", pgUrl]))
        assert.strictEqual(bad.code, 2)
        assert.notInclude(bad.stderr, "submitting")
      }),
    120_000
  )

  it.effect(
    "a submission follows its run: k of n parts read, and a warning while no runner is there",
    () =>
      Effect.gen(function* () {
        const cluster = yield* Effect.promise(() => startCluster(pgUrl, 0))
        yield* Effect.addFinalizer(() => Effect.promise(() => cluster.close()))
        // The run's plan and three staged parts, as runners leave them (the tables as the staging creates them).
        yield* Effect.promise(async () => {
          const client = new pg.Client({ connectionString: cluster.url })
          await client.connect()
          await client.query(
            "CREATE TABLE etl_runs (run_id text PRIMARY KEY, parts integer NOT NULL, planned_at timestamptz NOT NULL DEFAULT now())"
          )
          await client.query(
            "CREATE TABLE etl_staged (run_id text NOT NULL, part text NOT NULL, kind text NOT NULL, token text NOT NULL, staged_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (run_id, part, kind))"
          )
          await client.query("INSERT INTO etl_runs VALUES ('progress-1', 4)")
          for (const part of ["a", "b", "c"])
            await client.query("INSERT INTO etl_staged VALUES ('progress-1', $1, 'records', 't')", [part])
          await client.end()
        })
        const dir = tmp()
        const file = config(dir, {
          source: { type: "file", path: files(dir) },
          sink: { type: "file", path: nodePath.join(dir, "out"), format: { type: "jsonl" } }
        })
        const submission = cli(["run", file, "--cluster", cluster.url, "--run-id", "progress-1"])
        yield* Effect.promise(() =>
          waitUntil(() => submission.stderr().includes("progress-1: 3 of 4 parts read"), 30_000, "the progress line")
        )
        submission.process.kill("SIGKILL")
        yield* Effect.promise(() => submission.exited)
        assert.include(submission.stderr(), "no runner is registered in the cluster")
      }).pipe(Effect.scoped),
    120_000
  )

  it.effect(
    "a part that fails for a data reason fails the run, naming the part; a pipeline that cannot be split runs whole",
    () =>
      Effect.gen(function* () {
        const pgDb = yield* PgTest
        yield* pgDb.sql("CREATE TABLE events (id int PRIMARY KEY, v text NOT NULL)")
        yield* pgDb.sql("INSERT INTO events SELECT i, 'v' || i FROM generate_series(1, 500) i")
        const cluster = yield* Effect.promise(() => startCluster(pgUrl, 2))
        yield* Effect.addFinalizer(() => Effect.promise(() => cluster.close()))
        const dir = tmp()
        const data = files(dir)
        const out = nodePath.join(dir, "out")
        const failing = config(dir, {
          source: { type: "file", path: `${data}/*.jsonl`, schema: "transaction" },
          transforms: [{ type: "validate", rules: [{ rule: "range", field: "amount", min: 0 }] }],
          sink: { type: "file", path: out, format: { type: "jsonl" }, mode: "overwrite" }
        })
        const failed = yield* Effect.promise(() =>
          ended(cli(["run", failing, "--cluster", cluster.url, "--part-bytes", "1"]))
        )
        assert.strictEqual(failed.code, 1, failed.stderr)
        assert.include(failed.stderr, `part ${data}/tx-1.jsonl`)
        assert.include(failed.stderr, "validate rejected a record")
        assert.isFalse(fs.existsSync(out), "nothing was written")

        // An incremental read saves its mark when it ends: it is read whole, on one runner.
        const state = nodePath.join(dir, "state.json")
        const whole = config(dir, {
          connections: { db: { type: "postgres", url: pgUrl, schema: pgDb.schema } },
          source: {
            type: "postgres",
            connection: "db",
            table: "events",
            incremental: { column: "id", state_file: state }
          },
          sink: { type: "file", path: nodePath.join(dir, "events"), format: { type: "jsonl" } }
        })
        const ran = yield* Effect.promise(() => ended(cli(["run", whole, "--cluster", cluster.url])))
        assert.strictEqual(ran.code, 0, ran.stderr)
        const report = JSON.parse(ran.stdout) as { records: { read: number; written: number } }
        assert.strictEqual(report.records.read, 500)
        assert.strictEqual(report.records.written, 500)
        assert.isTrue(fs.existsSync(state), "the mark was saved")
        const logs = cluster.runners.flatMap((r) => logLines(r.proc.stderr()).map((l) => String(l.message)))
        assert.isTrue(logs.some((m) => m.includes("reads its input whole on one runner")))
        assert.strictEqual(
          cluster.runners.reduce((n, r) => n + partsOf(r.proc.stderr()).started.size, 0),
          3,
          "only the failing run's three parts were read as parts"
        )
      }).pipe(Effect.scoped),
    180_000
  )
})
