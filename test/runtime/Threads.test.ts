import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { loadConfigText, services } from "../../src/cli/Shared.ts"
import * as ThreadWorker from "../../src/cli/ThreadWorker.ts"
import type { Pipeline } from "../../src/core/Plan.ts"
import type { RunReport } from "../../src/core/RunReport.ts"
import * as Threads from "../../src/runtime/Threads.ts"
import * as Redaction from "../../src/secrets/Redaction.ts"

const tmp = () => fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-threads-"))

/** JSON Lines of orders, with a few lines that do not parse and records the schema rejects. */
const writeOrders = (path: string, count: number, from = 0) => {
  const lines: Array<string> = []
  for (let i = from; i < from + count; i++) {
    if (i % 997 === 0) lines.push(`{"broken": ${i}`)
    else if (i % 613 === 0) lines.push(JSON.stringify({ id: i, customer: `c${i % 17}`, amount: "lots", day: i % 5 }))
    else lines.push(JSON.stringify({ id: i, customer: `c${i % 17}`, amount: i % 1000, day: i % 5 }))
  }
  fs.writeFileSync(path, `${lines.join("\n")}\n`)
}

const schemaDir = (dir: string) => {
  const schemas = nodePath.join(dir, "schemas")
  fs.mkdirSync(schemas, { recursive: true })
  fs.writeFileSync(
    nodePath.join(schemas, "order.avsc"),
    JSON.stringify({
      type: "record",
      name: "order",
      fields: [
        { name: "id", type: "long" },
        { name: "customer", type: "string" },
        { name: "amount", type: "double" },
        { name: "day", type: "int" }
      ]
    })
  )
  return schemas
}

/** Loads a config as the command line does, and runs it with `Threads.run`. */
const runConfig = (dir: string, config: Record<string, unknown>, threads: number, targetBytes?: number) =>
  Effect.gen(function* () {
    const text = JSON.stringify(config)
    const file = nodePath.join(dir, `${String(config.name)}.json`)
    fs.writeFileSync(file, text)
    const schemas = nodePath.join(dir, "schemas")
    const { pipeline, connections } = yield* loadConfigText(file, text, schemas)
    return yield* Threads.run(pipeline as Pipeline<unknown, never>, {
      threads,
      worker: ThreadWorker.script,
      load: { kind: "config", file, text, schemas } satisfies ThreadWorker.Load,
      targetBytes
    }).pipe(Effect.provide(Layer.merge(services(schemas), connections as Layer.Layer<never>)))
  }).pipe(Effect.provideService(Redaction.Secrets, Redaction.registry()))

const readJsonl = (dir: string): ReadonlyArray<unknown> =>
  fs
    .readdirSync(dir)
    .filter((name) => name.endsWith(".jsonl"))
    .sort()
    .flatMap((name) =>
      fs
        .readFileSync(nodePath.join(dir, name), "utf8")
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as unknown)
    )

const counts = (report: RunReport) => ({ status: report.status, records: report.records, ok: report.reconciliation.ok })

describe("Runs on threads", () => {
  it.live(
    "a big JSON Lines file read in ranges on 3 threads writes the records, in order, and the dead letters of a run on one thread",
    () =>
      Effect.gen(function* () {
        const dir = tmp()
        schemaDir(dir)
        writeOrders(nodePath.join(dir, "orders.jsonl"), 20_000)
        const config = (out: string) => ({
          name: "orders",
          source: { type: "file", path: nodePath.join(dir, "orders.jsonl"), schema: "order" },
          transforms: [
            { type: "filter", condition: "amount >= 100.0" },
            { type: "derive", fields: { big: "amount > 500.0" } }
          ],
          sink: { type: "file", path: nodePath.join(dir, out, "data"), format: { type: "jsonl" }, mode: "overwrite" },
          dead_letters: { type: "file", path: nodePath.join(dir, out, "dead"), format: { type: "jsonl" } }
        })
        const one = yield* runConfig(dir, config("one"), 1)
        const three = yield* runConfig(dir, config("three"), 3, 64 * 1024)
        assert.isUndefined(three.error)
        assert.deepStrictEqual(counts(three.report), counts(one.report))
        assert.strictEqual(three.report.status, "succeeded")
        assert.isAbove(three.report.records.deadLettered, 20)
        // The records, in the order of the input.
        const written = readJsonl(nodePath.join(dir, "three", "data"))
        assert.deepStrictEqual(written, readJsonl(nodePath.join(dir, "one", "data")))
        assert.strictEqual(written.length, three.report.records.written)
        // Each part wrote its own files: more than one, taken in by one commit.
        assert.isAbove(
          fs.readdirSync(nodePath.join(dir, "three", "data")).filter((n) => n.endsWith(".jsonl")).length,
          3
        )
        const origins = (out: string) =>
          (readJsonl(nodePath.join(dir, out, "dead")) as ReadonlyArray<{ origin: string }>).map((d) => d.origin).sort()
        assert.deepStrictEqual(origins("three"), origins("one"))
        // Nothing staged is left next to the sink's directory or in the temporary directory.
        assert.deepStrictEqual(
          fs.readdirSync(nodePath.join(dir, "three")).filter((name) => name.includes("staging")),
          []
        )
      })
  )

  it.live("an aggregate over many files merges the parts' partial states as one thread does", () =>
    Effect.gen(function* () {
      const dir = tmp()
      schemaDir(dir)
      fs.mkdirSync(nodePath.join(dir, "in"))
      for (let f = 0; f < 6; f++) writeOrders(nodePath.join(dir, "in", `orders-${f}.jsonl`), 3000, f * 3000)
      const config = (out: string) => ({
        name: `totals-${out}`,
        source: { type: "file", path: nodePath.join(dir, "in"), format: { type: "jsonl" }, schema: "order" },
        transforms: [
          {
            type: "aggregate",
            group_by: ["customer"],
            fields: {
              orders: { fn: "count" },
              total: { fn: "sum", field: "amount" },
              first: { fn: "first", field: "id" }
            }
          }
        ],
        sink: { type: "file", path: nodePath.join(dir, out), format: { type: "jsonl" }, mode: "overwrite" },
        dead_letters: { type: "file", path: nodePath.join(dir, `${out}-dead`), format: { type: "jsonl" } }
      })
      const one = yield* runConfig(dir, config("one"), 1)
      const two = yield* runConfig(dir, config("two"), 2, 1)
      assert.isUndefined(two.error)
      assert.deepStrictEqual(counts(two.report), counts(one.report))
      const sorted = (out: string) =>
        (readJsonl(nodePath.join(dir, out)) as ReadonlyArray<{ customer: string }>)
          .slice()
          .sort((a, b) => (a.customer < b.customer ? -1 : 1))
      assert.strictEqual(sorted("two").length, 17)
      assert.deepStrictEqual(sorted("two"), sorted("one"))
    })
  )

  it.live(
    "a part that fails fails the run with a report naming the part; the sink's directory keeps its old data",
    () =>
      Effect.gen(function* () {
        const dir = tmp()
        schemaDir(dir)
        fs.mkdirSync(nodePath.join(dir, "in"))
        for (let f = 0; f < 4; f++) writeOrders(nodePath.join(dir, "in", `orders-${f}.jsonl`), 500, f * 500)
        fs.writeFileSync(nodePath.join(dir, "in", "orders-9.jsonl"), "{broken\n{broken\n{broken\n")
        const config = {
          name: "strict",
          source: { type: "file", path: nodePath.join(dir, "in"), format: { type: "jsonl" }, schema: "order" },
          sink: { type: "file", path: nodePath.join(dir, "out"), format: { type: "jsonl" }, mode: "overwrite" },
          // No dead-letter sink and no allowance: a rejected record fails the run.
          quality: { max_rejected: 0 }
        }
        fs.mkdirSync(nodePath.join(dir, "out"))
        fs.writeFileSync(nodePath.join(dir, "out", "old.jsonl"), '{"old":true}\n')
        const { report, error } = yield* runConfig(dir, config, 2, 1)
        assert.isDefined(error)
        assert.strictEqual(report.status, "failed")
        assert.match(report.error!.message, /orders-\d\.jsonl/)
        assert.deepStrictEqual(readJsonl(nodePath.join(dir, "out")), [{ old: true }])
        assert.deepStrictEqual(
          fs.readdirSync(dir).filter((name) => name.startsWith(".out.staging")),
          []
        )
      })
  )

  it.live("a pipeline whose input is one part, or that cannot be split, runs on the calling thread", () =>
    Effect.gen(function* () {
      const dir = tmp()
      schemaDir(dir)
      writeOrders(nodePath.join(dir, "orders.jsonl"), 100)
      const { report, error } = yield* runConfig(
        dir,
        {
          name: "small",
          source: { type: "file", path: nodePath.join(dir, "orders.jsonl"), schema: "order" },
          sink: { type: "file", path: nodePath.join(dir, "out"), format: { type: "jsonl" } },
          dead_letters: { type: "file", path: nodePath.join(dir, "dead"), format: { type: "jsonl" } }
        },
        4
      )
      assert.isUndefined(error)
      assert.strictEqual(report.records.read, 100)
      assert.isFalse(report.runId.includes("/"))
    })
  )

  it.live("a worker thread answers a part it could not read, or a config it could not load, with the error", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = tmp()
        const schemas = schemaDir(dir)
        fs.writeFileSync(
          nodePath.join(dir, "bad.jsonl"),
          '{"id": 1, "customer": "a", "amount": 1, "day": 1}\n{broken\n'
        )
        const text = JSON.stringify({
          name: "strict",
          source: { type: "file", path: nodePath.join(dir, "bad.jsonl"), schema: "order" },
          sink: { type: "file", path: nodePath.join(dir, "out"), format: { type: "jsonl" } }
        })
        const thread = yield* Threads.spawn(ThreadWorker.script, "source")
        const part = {
          id: nodePath.join(dir, "bad.jsonl"),
          description: "bad.jsonl",
          spec: { paths: [nodePath.join(dir, "bad.jsonl")] }
        }
        const staging = tmp()
        const job = { runId: "r1", part, index: 0, staging }
        const failed = yield* Effect.flip(
          thread.read({ ...job, load: { kind: "config", file: "strict.json", text, schemas } })
        )
        assert.strictEqual(failed._tag, "QualityError")
        assert.match(failed.message, /bad\.jsonl/)
        const unloadable = yield* Effect.flip(
          thread.read({ ...job, load: { kind: "config", file: "broken.json", text: "{", schemas } })
        )
        assert.strictEqual(unloadable._tag, "BuildError")
        assert.match(unloadable.message, /broken\.json/)
        // The thread goes on answering after a failure: a good part reads.
        fs.writeFileSync(nodePath.join(dir, "bad.jsonl"), '{"id": 1, "customer": "a", "amount": 1, "day": 1}\n')
        const result = yield* thread.read({ ...job, load: { kind: "config", file: "strict.json", text, schemas } })
        assert.strictEqual(result.staged, 1)
      })
    )
  )

  it.effect(
    "by default a pipeline runs on the machine's cores (from 3) when its parts do all the work, else on one thread",
    () =>
      Effect.gen(function* () {
        const dir = tmp()
        const schemas = schemaDir(dir)
        const defaultOf = (config: Record<string, unknown>) =>
          Effect.map(loadConfigText("p.json", JSON.stringify(config), schemas), ({ pipeline }) =>
            Threads.defaultThreads(pipeline)
          )
        const source = { type: "file", path: nodePath.join(dir, "in"), format: { type: "jsonl" }, schema: "order" }
        const files = { type: "file", path: nodePath.join(dir, "out"), format: { type: "jsonl" } }
        // Record by record into files: every core.
        assert.strictEqual(
          yield* defaultOf({
            name: "copy",
            source,
            transforms: [{ type: "filter", condition: "day > 1" }],
            sink: files
          }),
          Threads.parallelismFor(Threads.cores())
        )
        // An aggregate: its finish merges every part's groups.
        assert.strictEqual(
          yield* defaultOf({
            name: "totals",
            source,
            transforms: [{ type: "aggregate", group_by: ["customer"], fields: { n: { fn: "count" } } }],
            sink: files
          }),
          1
        )
        // A sink that cannot stage parts itself: its finish writes every record.
        assert.strictEqual(
          yield* defaultOf({
            name: "to-s3",
            connections: { lake: { type: "s3", region: "us-east-1", endpoint: "http://127.0.0.1:9" } },
            source,
            sink: { type: "s3", connection: "lake", bucket: "b", path: "p", format: { type: "jsonl" } }
          }),
          1
        )
        // A table copied to a table as COPY text: hardly any work per record, and threads would stage every row twice.
        const db = { type: "postgres", url: "postgres://root@127.0.0.1:9/none" }
        const tables = {
          name: "copy-table",
          connections: { db },
          source: { type: "postgres", connection: "db", table: "a", partition: { column: "id", partitions: 4 } }
        }
        assert.strictEqual(yield* defaultOf({ ...tables, sink: { type: "postgres", connection: "db", table: "b" } }), 1)
        // The same read into files: every core.
        assert.strictEqual(yield* defaultOf({ ...tables, sink: files }), Threads.parallelismFor(Threads.cores()))
      }).pipe(Effect.provideService(Redaction.Secrets, Redaction.registry()))
  )

  it("the default parallelism: every core from 3 of them, one thread on 1 or 2", () => {
    assert.deepStrictEqual([1, 2, 3, 4, 16].map(Threads.parallelismFor), [1, 1, 3, 4, 16])
  })

  it("partBytes: about four parts per thread, 8 to 128 MiB each", () => {
    assert.strictEqual(Threads.partBytes(undefined, 2), 64 * 1024 * 1024)
    assert.strictEqual(Threads.partBytes(1000, 2), 8 * 1024 * 1024)
    assert.strictEqual(Threads.partBytes(800 * 1024 * 1024, 2), 100 * 1024 * 1024)
    assert.strictEqual(Threads.partBytes(100 * 1024 * 1024 * 1024, 2), 128 * 1024 * 1024)
  })

  it.live("the directory staging keeps a part's last committed read, and clears a run", () =>
    Effect.gen(function* () {
      const staging = Threads.makeDirectory(tmp())
      yield* Effect.scoped(
        Effect.gen(function* () {
          const first = yield* staging.open("run", "p1", "records")
          yield* first.write([{ a: 1 }])
          yield* first.commit
        })
      )
      yield* Effect.scoped(
        Effect.gen(function* () {
          // A read that does not commit changes nothing.
          const failed = yield* staging.open("run", "p1", "records")
          yield* failed.write([{ a: 9 }])
        })
      )
      yield* Effect.scoped(
        Effect.gen(function* () {
          const again = yield* staging.open("run", "p1", "records")
          yield* again.write([{ a: 2, at: new Date(0) }])
          yield* again.write([{ a: 3 }])
          yield* again.commit
        })
      )
      const read = (part: string) => Stream.runCollect(staging.read("run", part, "records"))
      assert.deepStrictEqual(yield* read("p1"), [[{ a: 2, at: new Date(0) }], [{ a: 3 }]])
      assert.deepStrictEqual(yield* read("p2"), [])
      yield* staging.clear("run")
      assert.deepStrictEqual(yield* read("p1"), [])
    })
  )
})
