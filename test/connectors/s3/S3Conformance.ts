/**
 * The S3 client and S3 source/sink behaviours every S3 client layer must show: run on the memory layer and on a real
 * S3-compatible server.
 */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as nodePath from "node:path"
import parquetjs from "@dsnp/parquetjs"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as S3 from "../../../src/connectors/s3/S3.ts"
import { S3Client } from "../../../src/connectors/s3/S3Client.ts"
import type { DeadLetter } from "../../../src/core/DeadLetter.ts"
import { LoadError } from "../../../src/core/Errors.ts"
import * as RecordSchema from "../../../src/core/RecordSchema.ts"
import * as Sink from "../../../src/core/Sink.ts"
import * as Source from "../../../src/core/Source.ts"
import { makeRunContext } from "../../../src/core/Stage.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"

const Row = Schema.Struct({ id: Schema.Int, name: Schema.String, day: Schema.String })
type Row = typeof Row.Type
const rows = (n: number, from = 0): ReadonlyArray<Row> =>
  Array.from({ length: n }, (_, i) => ({
    id: from + i,
    name: `name ${from + i}, "q"`,
    day: `2026-11-2${(from + i) % 3}`
  }))
const rowAvro = {
  type: "record",
  name: "Row",
  fields: [
    { name: "id", type: "int" },
    { name: "name", type: "string" },
    { name: "day", type: "string" }
  ]
}
const rowSchema: RecordSchema.RecordSchema<Row> = {
  ...RecordSchema.fromSchema(Row, "row"),
  avro: rowAvro,
  columns: { id: "integer" }
}

const suffix = () => crypto.randomUUID().slice(0, 8)
const text = (s: string) => new TextEncoder().encode(s)
const bytesOf = <E>(stream: Stream.Stream<Uint8Array, E>) =>
  Effect.map(Stream.runCollect(stream), (chunks) => Buffer.concat(chunks as Array<Uint8Array>))

const newBucket = Effect.gen(function* () {
  const bucket = `etl-${suffix()}`
  yield* S3Client.use((c) => c.createBucket(bucket))
  return bucket
})

/** These tests use the live console: keep the runs' log lines out of the test output. */
const quiet = Effect.provide(Logger.layer([]))

const readAll = <A>(source: Source.Source<A, unknown, S3Client>) =>
  Effect.gen(function* () {
    const out = Sink.collect<A>("out")
    const dead = Sink.collect<DeadLetter>("dead")
    const report = yield* Pipeline.from(source).pipe(Pipeline.to(out), Pipeline.withDeadLetters(dead), Pipeline.run)
    return { records: out.collected().records, dead: dead.collected().records, report }
  }).pipe(quiet)

const write = <A>(records: ReadonlyArray<A>, sink: Sink.Sink<A, unknown, S3Client>) =>
  Pipeline.from(Source.fromIterable("rows", records, { batchSize: 7 })).pipe(Pipeline.to(sink), Pipeline.run, quiet)

/** The records, dead letters and bytes of a source's batches: every object, or the given parts. */
export const readParts = <A, E>(source: Source.Source<A, E, S3Client>, parts?: ReadonlyArray<Source.SplitPart>) =>
  Effect.map(
    Stream.runCollect(
      source.batches({
        ...makeRunContext({ runId: "r", pipeline: "p", now: () => 0 }),
        ...(parts === undefined ? {} : { parts })
      })
    ),
    (batches) => ({
      records: batches.flatMap((b) => b.records),
      dead: batches.flatMap((b) => (b.deadLetters ?? []) as ReadonlyArray<DeadLetter>),
      bytes: batches.reduce((sum, b) => sum + (b.bytes ?? 0), 0)
    })
  )

/** Runs the conformance suite on an S3 client layer. */
export const conformance = (label: string, clientLayer: Layer.Layer<S3Client, unknown>) =>
  layer(clientLayer, { timeout: 120_000, excludeTestServices: true })(label, (it) => {
    it.effect("puts, gets ranges, copies and deletes objects", () =>
      Effect.gen(function* () {
        const client = yield* S3Client
        const bucket = yield* newBucket
        yield* client.put(bucket, "a/b.txt", text("0123456789"))
        assert.strictEqual((yield* bytesOf(client.get(bucket, "a/b.txt"))).toString(), "0123456789")
        assert.strictEqual((yield* bytesOf(client.get(bucket, "a/b.txt", { start: 2, end: 5 }))).toString(), "2345")
        yield* client.copy(bucket, "a/b.txt", "c/d e.txt")
        assert.strictEqual((yield* bytesOf(client.get(bucket, "c/d e.txt"))).toString(), "0123456789")
        yield* client.deleteMany(bucket, ["a/b.txt", "c/d e.txt", "missing"])
        assert.strictEqual((yield* client.list(bucket, "")).objects.length, 0)
        const missing = yield* Effect.flip(bytesOf(client.get(bucket, "a/b.txt")))
        assert.strictEqual(missing.reason._tag, "NoSuchKey")
        const noBucket = yield* Effect.flip(client.list(`etl-missing-${suffix()}`, ""))
        assert.strictEqual(noBucket.reason._tag, "NoSuchBucket")
        assert.isFalse(noBucket.retryable)
      })
    )

    it.effect("lists with pagination and continuation tokens", () =>
      Effect.gen(function* () {
        const client = yield* S3Client
        const bucket = yield* newBucket
        const keys = Array.from({ length: 23 }, (_, i) => `p/k-${String(i).padStart(3, "0")}`)
        yield* Effect.forEach(keys, (k) => client.put(bucket, k, text(k)), { concurrency: 8, discard: true })
        yield* client.put(bucket, "other/x", text("x"))
        const seen: Array<string> = []
        let token: string | undefined
        let pages = 0
        do {
          const page = yield* client.list(bucket, "p/", { continuationToken: token, maxKeys: 5 })
          seen.push(...page.objects.map((o) => o.key))
          token = page.continuationToken
          pages++
        } while (token !== undefined)
        assert.deepStrictEqual(seen, keys)
        assert.strictEqual(pages, 5)
        assert.deepStrictEqual(
          (yield* S3.listAll(client, bucket, "p/")).map((o) => o.key),
          keys
        )
      })
    )

    it.effect("uploads a 21 MiB object in parts", () =>
      Effect.gen(function* () {
        const client = yield* S3Client
        const bucket = yield* newBucket
        const part = 5 * 1024 * 1024
        const body = Buffer.alloc(21 * 1024 * 1024)
        for (let i = 0; i < body.length; i += 4096) body.writeUInt32BE(i, i)
        const id = yield* client.createMultipartUpload(bucket, "big.bin")
        const parts: Array<{ partNumber: number; etag: string }> = []
        for (let n = 0; n * part < body.length; n++)
          parts.push({
            partNumber: n + 1,
            etag: yield* client.uploadPart(bucket, "big.bin", id, n + 1, body.subarray(n * part, (n + 1) * part))
          })
        yield* client.completeMultipartUpload(bucket, "big.bin", id, parts)
        const listed = (yield* client.list(bucket, "big")).objects
        assert.strictEqual(listed[0]!.size, body.length)
        const back = yield* bytesOf(client.get(bucket, "big.bin"))
        assert.isTrue(back.equals(body))
        const tail = yield* bytesOf(client.get(bucket, "big.bin", { start: body.length - 4096, end: body.length - 1 }))
        assert.strictEqual(tail.readUInt32BE(0), body.length - 4096)
      })
    )

    it.effect("the source splits its objects into parts of about a target size, read apart to the same records", () =>
      Effect.gen(function* () {
        const bucket = yield* newBucket
        for (let o = 0; o < 5; o++) {
          const lines = rows(10, o * 10).map((r) => JSON.stringify(r))
          yield* S3Client.use((c) => c.put(bucket, `in/obj-${o}.jsonl`, text(`${lines.join("\n")}\n`)))
        }
        const source = S3.source<Row>({ bucket, path: "in/", format: { type: "jsonl" }, schema: rowSchema })
        const sizes = (yield* S3Client.use((c) => S3.listAll(c, bucket, "in/"))).map((o) => o.size!)
        const parts = yield* source.split!({ targetBytes: Math.max(...sizes) * 2 })
        assert.deepStrictEqual(
          parts.map((p) => p.id),
          ["in/obj-0.jsonl", "in/obj-2.jsonl", "in/obj-4.jsonl"]
        )
        assert.strictEqual(parts[0]!.size?.bytes, sizes[0]! + sizes[1]!)
        const read: Array<Row> = []
        for (const part of parts) {
          const ctx = { ...makeRunContext({ runId: "split", pipeline: "split", now: () => 0 }), parts: [part] }
          yield* Stream.runForEach(source.batches(ctx), (batch) => Effect.sync(() => read.push(...batch.records)))
        }
        assert.deepStrictEqual(
          read.map((r) => ({ ...r })).sort((a, b) => a.id - b.id),
          rows(50)
        )
      }).pipe(quiet)
    )

    it.effect(
      "a split with withinFiles cuts a big JSON Lines object into byte ranges; read one by one they give the records of a whole read, in order",
      () =>
        Effect.gen(function* () {
          const bucket = yield* newBucket
          const lines: Array<string> = []
          for (let i = 0; i < 3000; i++) {
            if (i % 211 === 0) lines.push("{broken")
            else if (i % 97 === 0) lines.push("")
            else lines.push(JSON.stringify({ id: i, name: `név ${i} ✓ 𝄞 ${"é".repeat(i % 17)}`, day: "d" }))
          }
          // CRLF line ends, and no final line break.
          const object = text(lines.join("\r\n"))
          yield* S3Client.use((c) => c.put(bucket, "big/rows.jsonl", object))
          const source = S3.source<Row>({ bucket, path: "big/rows.jsonl", schema: rowSchema, batchSize: 100 })
          const whole = yield* readParts(source)
          assert.strictEqual(whole.records.length, lines.filter((l) => l.startsWith('{"')).length)
          const parts = yield* source.split!({ targetBytes: 1000, withinFiles: true })
          assert.isAbove(parts.length, 2)
          for (const part of parts) assert.match(part.id, /^big\/rows\.jsonl@\d+$/)
          assert.strictEqual(
            parts.reduce((sum, p) => sum + (p.size?.bytes ?? 0), 0),
            object.length
          )
          const url = `s3://${bucket}/big/rows.jsonl`
          const pieces = { records: [] as Array<Row>, dead: [] as Array<DeadLetter>, bytes: 0 }
          for (const [i, part] of parts.entries()) {
            const one = yield* readParts(source, [part])
            pieces.records.push(...one.records)
            pieces.dead.push(...one.dead)
            pieces.bytes += one.bytes
            // A piece after the first is not read from the start: its dead letters count lines from its first.
            const start = (part.spec as { readonly bytes: { readonly start: number } }).bytes.start
            const origin = i === 0 ? `${url}:` : `${url}@${start}:`
            for (const d of one.dead) assert.isTrue(d.origin?.startsWith(origin), d.origin)
          }
          assert.deepStrictEqual(pieces.records, whole.records)
          assert.strictEqual(pieces.dead.length, whole.dead.length)
          assert.strictEqual(whole.dead[0]!.origin, `${url}:1`)
          assert.strictEqual(pieces.dead[0]!.origin, `${url}:1`)
          assert.strictEqual(pieces.bytes, object.length)
          assert.strictEqual((yield* source.split!({ targetBytes: 1000 })).length, 1)
          const gzip = S3.source({ bucket, path: "big/rows.jsonl", format: { type: "jsonl", compression: "gzip" } })
          assert.strictEqual((yield* gzip.split!({ targetBytes: 1000, withinFiles: true })).length, 1)
        })
    )

    it.effect(
      "a split with withinFiles cuts a big CSV object into ranges of whole records; read one by one with the header's names they give the records and dead letters of a whole read",
      () =>
        Effect.gen(function* () {
          const bucket = yield* newBucket
          const lines = ["id,name,day"]
          for (let i = 1; i <= 12_000; i++) {
            if (i % 97 === 0) lines.push(`${i},"a name with a\nline break, and a comma ✓",d`)
            else if (i % 89 === 0) lines.push(`x${i},"bad id",d`)
            else if (i % 83 === 0) lines.push(`${i},two,many,fields`)
            else lines.push(`${i},"row ${i}",d`)
          }
          yield* S3Client.use((c) => c.put(bucket, "big/rows.csv", text(`${lines.join("\r\n")}\r\n`)))
          const source = S3.source<Row>({ bucket, path: "big/rows.csv", schema: rowSchema, batchSize: 100 })
          const whole = yield* readParts(source)
          const parts = yield* source.split!({ targetBytes: 1000, withinFiles: true })
          assert.isAbove(parts.length, 2)
          for (const part of parts) assert.match(part.id, /^big\/rows\.csv@\d+$/)
          const records: Array<Row> = []
          const dead: Array<DeadLetter> = []
          for (const part of parts) {
            const one = yield* readParts(source, [part])
            records.push(...one.records)
            dead.push(...one.dead)
          }
          assert.strictEqual(records.length, whole.records.length)
          assert.deepStrictEqual(records, whole.records)
          const byOrigin = (letters: ReadonlyArray<DeadLetter>) =>
            letters.map((d) => [d.reason, d.origin, d.message]).sort((a, b) => (a[1]! < b[1]! ? -1 : 1))
          assert.deepStrictEqual(byOrigin(dead), byOrigin(whole.dead))
          assert.isAbove(whole.dead.length, 200)
          assert.strictEqual((yield* source.split!({ targetBytes: 1000 })).length, 1)
        })
    )

    it.effect(
      "a split with withinFiles cuts a big Parquet object into ranges of row groups, from its footer, that read back in order",
      () =>
        Effect.gen(function* () {
          const client = yield* S3Client
          const bucket = yield* newBucket
          const many = Array.from({ length: 3000 }, (_, i) => ({ id: i, name: `row ${i} ✓`, day: "d" }))
          yield* write(
            many,
            S3.sink<Row>({
              bucket,
              path: "lake",
              format: { type: "parquet", compression: "none", rowGroupRows: 250 },
              schema: rowSchema
            })
          )
          const [object] = (yield* S3.listAll(client, bucket, "lake/")).filter((o) => o.key.endsWith(".parquet"))
          const gets: Array<{ readonly start: number; readonly end: number } | undefined> = []
          const counting = S3Client.of({
            ...client,
            get: (b, key, range) => {
              if (key === object!.key) gets.push(range)
              return client.get(b, key, range)
            }
          })
          const source = S3.source<Row>({ bucket, path: "lake", schema: rowSchema, batchSize: 100 })
          const parts = yield* source.split!({ targetBytes: object!.size / 5, withinFiles: true }).pipe(
            Effect.provideService(S3Client, counting)
          )
          assert.isAbove(parts.length, 2)
          // The split reads the object's footer only.
          assert.strictEqual(gets.length, 1)
          assert.deepStrictEqual(gets[0], { start: Math.max(0, object!.size - 65536), end: object!.size - 1 })
          const ids = parts.map((p) => p.id)
          for (const id of ids) assert.match(id, /^lake\/part-.*\.parquet#\d+$/)
          assert.strictEqual(new Set(ids).size, ids.length)
          const records: Array<Row> = []
          for (const part of parts) records.push(...(yield* readParts(source, [part])).records)
          assert.deepStrictEqual(
            records.map((r) => ({ ...r })),
            many
          )
          assert.strictEqual((yield* source.split!({ targetBytes: object!.size / 5 })).length, 1)
        })
    )

    it.effect("sink writes Avro, JSON Lines and gzip CSV part objects that the source reads back", () =>
      Effect.gen(function* () {
        const bucket = yield* newBucket
        for (const format of [
          { type: "avro", codec: "deflate" },
          { type: "jsonl" },
          { type: "csv", compression: "gzip" }
        ] as const) {
          const path = `out/${format.type}`
          const report = yield* write(
            rows(50),
            S3.sink<Row>({ bucket, path, format, schema: rowSchema, maxRecordsPerObject: 20 })
          )
          assert.strictEqual(report.records.written, 50)
          const objects = (yield* S3Client.use((c) => S3.listAll(c, bucket, `${path}/`))).map((o) => o.key)
          assert.strictEqual(objects.filter((k) => k.includes("part-")).length, 3)
          assert.include(objects, `${path}/_SUCCESS`)
          const back = yield* readAll(S3.source<Row>({ bucket, path, schema: rowSchema, batchSize: 8, concurrency: 3 }))
          assert.deepStrictEqual(
            back.records.map((r) => ({ ...r })).sort((a, b) => a.id - b.id),
            rows(50)
          )
        }
      })
    )

    it.effect(
      "reads several objects concurrently, each object's batches in order; bad lines name the key and line",
      () =>
        Effect.gen(function* () {
          const client = yield* S3Client
          const bucket = yield* newBucket
          for (let f = 0; f < 5; f++) {
            const lines = Array.from({ length: 30 }, (_, i) =>
              JSON.stringify({ id: f * 100 + i, name: `f${f}`, day: "d" })
            )
            if (f === 2) lines.splice(3, 0, "{not json")
            yield* client.put(bucket, `in/f${f}.jsonl`, text(`${lines.join("\n")}\n`))
          }
          yield* client.put(bucket, "in/_SUCCESS", text(""))
          const { records, dead } = yield* readAll(
            S3.source<Row>({ bucket, path: "in", schema: rowSchema, batchSize: 4, concurrency: 3 })
          )
          assert.strictEqual(records.length, 150)
          for (let f = 0; f < 5; f++) {
            const ids = records.filter((r) => r.name === `f${f}`).map((r) => r.id)
            assert.deepStrictEqual(
              ids,
              Array.from({ length: 30 }, (_, i) => f * 100 + i)
            )
          }
          assert.strictEqual(dead.length, 1)
          assert.strictEqual(dead[0]!.origin, `s3://${bucket}/in/f2.jsonl:4`)
          const glob = yield* readAll(S3.source<Row>({ bucket, path: "in/f[13].jsonl", schema: rowSchema }))
          assert.strictEqual(glob.records.length, 60)
        })
    )

    it.effect(
      "overwrite replaces the set behind a _SUCCESS manifest; append adds objects; partitions make Hive paths",
      () =>
        Effect.gen(function* () {
          const bucket = yield* newBucket
          const sink = (mode: "append" | "overwrite") =>
            S3.sink<Row>({ bucket, path: "t", format: { type: "jsonl" }, mode, partitionBy: ["day"] })
          yield* write(rows(30), sink("overwrite"))
          yield* write(rows(6, 30), sink("append"))
          let back = yield* readAll(S3.source<Row>({ bucket, path: "t", schema: rowSchema }))
          assert.strictEqual(back.records.length, 36)
          const keys = (yield* S3Client.use((c) => S3.listAll(c, bucket, "t/"))).map((o) => o.key)
          assert.isTrue(keys.some((k) => k.startsWith("t/day=2026-11-20/part-")))
          yield* write(rows(4, 100), sink("overwrite"))
          back = yield* readAll(S3.source<Row>({ bucket, path: "t", schema: rowSchema }))
          assert.deepStrictEqual(
            [...back.records].map((r) => r.id).sort((a, b) => a - b),
            [100, 101, 102, 103]
          )
          const manifest = yield* S3Client.use((c) => S3.readManifest(c, bucket, "t"))
          assert.strictEqual(manifest?.records, 4)
          const after = (yield* S3Client.use((c) => S3.listAll(c, bucket, "t/"))).map((o) => o.key)
          assert.strictEqual(after.filter((k) => k.includes("part-")).length, manifest?.files.length)
        })
    )

    it.effect("a failed run leaves the old set and no new objects", () =>
      Effect.gen(function* () {
        const bucket = yield* newBucket
        yield* write(rows(10), S3.sink<Row>({ bucket, path: "t", format: { type: "jsonl" }, mode: "overwrite" }))
        const before = (yield* S3Client.use((c) => S3.listAll(c, bucket, "t/"))).map((o) => o.key)
        const source = Source.make<Row, LoadError>({
          name: "flaky",
          type: "memory",
          description: "fails after two batches",
          bounded: true,
          batches: () =>
            Stream.concat(
              Stream.fromIterable(rows(10).map((r) => ({ records: [r], deadLetters: [], ack: Effect.void }))),
              Stream.fail(new LoadError({ stage: "flaky", message: "boom", retryable: false }))
            )
        })
        const error = yield* Effect.flip(
          Pipeline.from(source).pipe(
            Pipeline.to(
              S3.sink<Row>({ bucket, path: "t", format: { type: "jsonl" }, mode: "overwrite", maxRecordsPerObject: 3 })
            ),
            Pipeline.withRetry({ attempts: 1, initialDelay: "1 millis", factor: 1 }),
            Pipeline.run
          )
        )
        assert.include(error.message, "boom")
        const after = (yield* S3Client.use((c) => S3.listAll(c, bucket, "t/"))).map((o) => o.key)
        assert.deepStrictEqual(after, before)
        assert.strictEqual(
          (yield* readAll(S3.source<Row>({ bucket, path: "t", schema: rowSchema }))).records.length,
          10
        )
      })
    )

    it.effect("the sink uploads a large object in parts (multipart through the sink)", () =>
      Effect.gen(function* () {
        const bucket = yield* newBucket
        const big = Array.from({ length: 60_000 }, (_, i) => ({ id: i, name: "x".repeat(90), day: "d" }))
        yield* write(big, S3.sink<Row>({ bucket, path: "big", format: { type: "jsonl" }, partSize: 5 * 1024 * 1024 }))
        const objects = (yield* S3Client.use((c) => S3.listAll(c, bucket, "big/"))).filter((o) =>
          o.key.includes("part-")
        )
        assert.strictEqual(objects.length, 1)
        assert.isAbove(objects[0]!.size, 5 * 1024 * 1024)
        const back = yield* readAll(S3.source<Row>({ bucket, path: "big", schema: rowSchema }))
        assert.strictEqual(back.records.length, 60_000)
        assert.deepStrictEqual(back.records[59_999], big[59_999])
      })
    )

    it.effect(
      "the source tells its input size from the listing, and its batches carry the bytes they were read from",
      () =>
        Effect.gen(function* () {
          const bucket = yield* newBucket
          const client = yield* S3Client
          const a = rows(30)
            .map((r) => JSON.stringify(r))
            .join("\n")
          yield* client.put(bucket, "in/a.jsonl", text(`${a}\n`))
          yield* client.put(bucket, "in/b.jsonl", text("{}\n"))
          yield* client.put(bucket, "in/_meta.json", text("{}"))
          const all = text(`${a}\n`).length + 3
          const size = (path: string) => S3.source({ bucket, path }).size!
          assert.deepStrictEqual(yield* size("in"), { bytes: all })
          assert.deepStrictEqual(yield* size("in/*.jsonl"), { bytes: all })
          assert.deepStrictEqual(yield* size("in/b.jsonl"), { bytes: 3 })
          const batches = yield* Stream.runCollect(
            S3.source({ bucket, path: "in", batchSize: 4 }).batches(
              makeRunContext({ runId: "r", pipeline: "p", now: () => 0 })
            )
          )
          assert.strictEqual(
            batches.reduce((sum, b) => sum + (b.bytes ?? 0), 0),
            all
          )
          yield* write(
            rows(50),
            S3.sink<Row>({ bucket, path: "out", format: { type: "jsonl" }, maxRecordsPerObject: 20 })
          )
          const parts = (yield* S3.listAll(client, bucket, "out/")).filter((o) => o.key.includes("part-"))
          assert.deepStrictEqual(yield* size("out"), { bytes: parts.reduce((sum, o) => sum + o.size, 0) })
        })
    )

    it.effect(
      "sink writes Parquet part objects under Hive partitions that the source and @dsnp/parquetjs read back",
      () =>
        Effect.gen(function* () {
          const bucket = yield* newBucket
          const sink = (mode: "append" | "overwrite") =>
            S3.sink<Row>({
              bucket,
              path: "lake/rows",
              format: { type: "parquet", compression: "gzip" },
              schema: rowSchema,
              mode,
              partitionBy: ["day"],
              maxRecordsPerObject: 8
            })
          yield* write(rows(30), sink("overwrite"))
          yield* write(rows(6, 30), sink("append"))
          const keys = (yield* S3Client.use((c) => S3.listAll(c, bucket, "lake/rows/"))).map((o) => o.key)
          const parts = keys.filter((k) => k.endsWith(".parquet"))
          assert.isTrue(parts.every((k) => /^lake\/rows\/day=2026-11-2[012]\/part-.*\.parquet$/.test(k)))
          assert.isAbove(parts.length, 3)
          const back = yield* readAll(S3.source<Row>({ bucket, path: "lake/rows", schema: rowSchema, concurrency: 3 }))
          assert.deepStrictEqual(
            back.records.map((r) => ({ ...r })).sort((a, b) => a.id - b.id),
            rows(36)
          )
          const client = yield* S3Client
          const bytes = yield* bytesOf(client.get(bucket, parts[0]!))
          const independent = yield* Effect.promise(async () => {
            const reader = await parquetjs.ParquetReader.openBuffer(bytes)
            const cursor = reader.getCursor()
            const found: Array<Record<string, unknown>> = []
            for (let row = await cursor.next(); row !== null; row = await cursor.next())
              found.push(row as Record<string, unknown>)
            await reader.close()
            return found
          })
          assert.isAbove(independent.length, 0)
          const day = /day=([^/]+)\//.exec(parts[0]!)![1]
          for (const row of independent) {
            assert.strictEqual(row.day, day)
            assert.deepStrictEqual(row, rows(36)[row.id as number])
          }
          yield* write(rows(4, 100), sink("overwrite"))
          const replaced = yield* readAll(S3.source<Row>({ bucket, path: "lake/rows", schema: rowSchema }))
          assert.deepStrictEqual(
            replaced.records.map((r) => r.id).sort((a, b) => a - b),
            [100, 101, 102, 103]
          )
        })
    )

    it.effect("the source reads a Parquet object that @dsnp/parquetjs wrote (several row groups, gzip)", () =>
      Effect.gen(function* () {
        const client = yield* S3Client
        const bucket = yield* newBucket
        const want = rows(25)
        const bytes = yield* Effect.promise(async () => {
          const dir = await fs.mkdtemp(nodePath.join(os.tmpdir(), "effect-etl-s3-parquetjs-"))
          const path = nodePath.join(dir, "rows.parquet")
          const schema = new parquetjs.ParquetSchema({
            id: { type: "INT32" },
            name: { type: "UTF8", compression: "GZIP" },
            day: { type: "UTF8" }
          })
          const writer = await parquetjs.ParquetWriter.openFile(schema, path, { rowGroupSize: 10 })
          for (const row of want) await writer.appendRow({ ...row })
          await writer.close()
          const written = await fs.readFile(path)
          await fs.rm(dir, { recursive: true, force: true })
          return new Uint8Array(written)
        })
        yield* client.put(bucket, "theirs/rows.parquet", bytes)
        const withSchema = yield* readAll(S3.source<Row>({ bucket, path: "theirs", schema: rowSchema, batchSize: 7 }))
        assert.deepStrictEqual(
          withSchema.records.map((r) => ({ ...r })),
          want
        )
        // Without a schema, the file's own: the same values.
        const without = yield* readAll(S3.source<Record<string, unknown>>({ bucket, path: "theirs/rows.parquet" }))
        assert.deepStrictEqual(
          without.records.map((r) => ({ ...r })),
          want.map((r) => ({ ...r }))
        )
      })
    )

    it.effect("the source reads a Parquet object with ranged GETs: the footer first, then one GET per row group", () =>
      Effect.gen(function* () {
        const client = yield* S3Client
        const bucket = yield* newBucket
        const many = Array.from({ length: 30_000 }, (_, i) => ({ id: i, name: `${"x".repeat(40)}${i}`, day: "d" }))
        yield* write(
          many,
          S3.sink<Row>({
            bucket,
            path: "big",
            format: { type: "parquet", compression: "none", rowGroupRows: 5000 },
            schema: rowSchema
          })
        )
        const [object] = (yield* S3.listAll(client, bucket, "big/")).filter((o) => o.key.endsWith(".parquet"))
        const gets: Array<{ readonly key: string; readonly range: { start: number; end: number } | undefined }> = []
        const counting = S3Client.of({
          ...client,
          get: (b, key, range) => {
            gets.push({ key, range })
            return client.get(b, key, range)
          }
        })
        const back = yield* readAll(S3.source<Row>({ bucket, path: "big", schema: rowSchema, batchSize: 1000 })).pipe(
          Effect.provideService(S3Client, counting)
        )
        assert.strictEqual(back.records.length, many.length)
        assert.deepStrictEqual(back.records[29_999], many[29_999])
        const reads = gets.filter((g) => g.key === object!.key)
        assert.strictEqual(reads.length, 1 + 6)
        assert.deepStrictEqual(reads[0]!.range, { start: object!.size - 65536, end: object!.size - 1 })
        for (const read of reads) {
          assert.isDefined(read.range)
          assert.isBelow(read.range!.end - read.range!.start + 1, object!.size / 4)
        }
      })
    )
  })
