import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import fc from "fast-check"
import * as LineRanges from "../../../src/connectors/internal/LineRanges.ts"
import * as NodeS3 from "../../../src/connectors/s3/NodeS3.ts"
import * as S3 from "../../../src/connectors/s3/S3.ts"
import * as S3Client from "../../../src/connectors/s3/S3Client.ts"
import { reasonOf } from "../../../src/connectors/s3/S3Error.ts"
import * as Format from "../../../src/formats/Format.ts"
import { S3Server } from "../../support/S3Server.ts"
import { conformance, readParts } from "./S3Conformance.ts"

conformance(
  "S3 connector (memory client)",
  Layer.suspend(() => S3Client.layerMemory(S3Client.memory({}, { pageSize: 1000, chunkSize: 1000 })))
)

conformance(
  "S3 connector (S3Proxy server)",
  Layer.unwrap(Effect.map(S3Server, (server) => NodeS3.layer(server.options))).pipe(Layer.provide(S3Server.layer))
)

describe("S3 error classification", () => {
  const sdkError = (name: string, status: number | undefined, extra?: Record<string, unknown>) =>
    Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode: status }, ...extra })
  it("maps throttling, 5xx, timeouts and resets to retryable reasons", () => {
    for (const [error, tag] of [
      [sdkError("SlowDown", 503), "Throttled"],
      [sdkError("ThrottlingException", 400), "Throttled"],
      [sdkError("InternalError", 500), "ServerError"],
      [sdkError("Unknown", 502), "ServerError"],
      [sdkError("RequestTimeout", 400), "Timeout"],
      [sdkError("TimeoutError", undefined), "Timeout"],
      [Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }), "ConnectionError"],
      [Object.assign(new Error("connect"), { code: "ECONNREFUSED" }), "ConnectionError"]
    ] as const) {
      const reason = NodeS3.classifyReason(error)
      assert.strictEqual(reason._tag, tag)
      assert.isTrue(reason.retryable)
    }
  })
  it("maps missing buckets, denied access and invalid arguments to non-retryable reasons", () => {
    for (const [error, tag] of [
      [sdkError("NoSuchBucket", 404), "NoSuchBucket"],
      [sdkError("NoSuchKey", 404), "NoSuchKey"],
      [sdkError("AccessDenied", 403), "AccessDenied"],
      [sdkError("InvalidAccessKeyId", 403), "AccessDenied"],
      [sdkError("InvalidArgument", 400), "InvalidArgument"],
      [sdkError("Weird", 418), "Unknown"]
    ] as const) {
      const reason = NodeS3.classifyReason(error)
      assert.strictEqual(reason._tag, tag)
      assert.isFalse(reason.retryable)
    }
    assert.strictEqual(reasonOf({ status: 404 })._tag, "NoSuchKey")
  })
  it("names the operation, bucket and key and never the credentials", () => {
    const error = NodeS3.classifyError("get", "lake", "a/b.csv")(sdkError("AccessDenied", 403))
    assert.strictEqual(error.message, "S3 get s3://lake/a/b.csv failed (AccessDenied): AccessDenied happened")
    assert.isFalse(error.retryable)
  })
})

const line = fc.oneof(
  { weight: 6, arbitrary: fc.json() },
  { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 12 }).map((t) => JSON.stringify({ t })) },
  { weight: 1, arbitrary: fc.constantFrom("", " ", "{not json", '"é𝄞"') }
)
const jsonLines = fc
  .tuple(fc.array(line, { maxLength: 40 }), fc.constantFrom("\n", "\r\n"), fc.boolean())
  .map(([lines, eol, final]) => lines.join(eol) + (final && lines.length > 0 ? eol : ""))

const decoded = (bytes: Uint8Array) =>
  Effect.runSync(
    Stream.runCollect(Stream.make(bytes).pipe(Format.decoder({ type: "jsonl" }, { onError: "collect" })))
  ).reduce(
    (all, b) => ({ records: [...all.records, ...b.records], errors: [...all.errors, ...b.errors.map((e) => e.raw)] }),
    { records: [] as Array<unknown>, errors: [] as Array<unknown> }
  )

describe("S3 source: JSON Lines in byte ranges (memory client)", () => {
  it("the lines of byte ranges of any size, read with ranged GETs, are the object's bytes exactly once, in order", () =>
    fc.assert(
      fc.property(
        jsonLines,
        fc.integer({ min: 1, max: 80 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 16 }),
        (content, target, chunkSize, probe) => {
          const object = new TextEncoder().encode(content)
          const client = S3Client.makeMemory(S3Client.memory({ b: { k: object } }, { chunkSize }))
          const read = (start: number, end: number) =>
            end <= start ? Stream.empty : client.get("b", "k", { start, end: end - 1 })
          const pieces = LineRanges.byteRanges(object.length, target).map((range) =>
            Buffer.concat(
              Effect.runSync(
                Stream.runCollect(LineRanges.linesOf(read, object.length, range, probe))
              ) as Array<Uint8Array>
            )
          )
          assert.isTrue(Buffer.concat(pieces).equals(object))
          // Each piece is whole lines: decoded apart, they give the records of the whole object.
          const apart = pieces.map(decoded)
          const whole = decoded(object)
          assert.deepStrictEqual(
            apart.flatMap((d) => d.records),
            whole.records
          )
          assert.deepStrictEqual(
            apart.flatMap((d) => d.errors),
            whole.errors
          )
        }
      ),
      { numRuns: 300 }
    ))

  it.effect("split parts of a JSON Lines object bigger than the smallest range read back as the whole object", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(
          fc.array(jsonLines, { minLength: 1, maxLength: 6 }),
          fc.integer({ min: 1, max: 150_000 }),
          async (contents, target) => {
            let content = ""
            for (let i = 0; content.length < 200_000; i++) content += `${contents[i % contents.length]!}\n`
            const store = S3Client.memory({ b: { "in/k.jsonl": content } }, { chunkSize: 4093 })
            const source = S3.source({ bucket: "b", path: "in/k.jsonl" })
            const run = Effect.gen(function* () {
              const whole = yield* readParts(source)
              const parts = yield* source.split!({ targetBytes: target, withinFiles: true })
              assert.isAbove(parts.length, 1)
              const ids = parts.map((p) => p.id)
              assert.strictEqual(new Set(ids).size, ids.length)
              const records: Array<unknown> = []
              let dead = 0
              for (const part of parts) {
                const one = yield* readParts(source, [part])
                records.push(...one.records)
                dead += one.dead.length
              }
              assert.deepStrictEqual(records, whole.records)
              assert.strictEqual(dead, whole.dead.length)
            })
            await Effect.runPromise(run.pipe(Effect.provide(S3Client.layerMemory(store))))
          }
        ),
        { numRuns: 25 }
      )
    )
  )
})
