import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FormatError from "../../src/formats/FormatError.ts"

describe("FormatError", () => {
  it("prefixes the reason with every known position", () => {
    assert.strictEqual(
      FormatError.make({ format: "jsonl", file: "transactions.jsonl", line: 17, reason: "Unexpected token }" }).message,
      "transactions.jsonl line 17: Unexpected token }"
    )
    assert.strictEqual(
      FormatError.make({ format: "csv", file: "tx.csv", line: 4, column: "amount", reason: "invalid number" }).message,
      'tx.csv line 4, column "amount": invalid number'
    )
    assert.strictEqual(
      FormatError.make({ format: "avro", block: 3, offset: 1024, reason: "corrupt" }).message,
      "block 3, byte 1024: corrupt"
    )
    assert.strictEqual(FormatError.make({ format: "gzip", reason: "not a gzip file" }).message, "gzip: not a gzip file")
    assert.strictEqual(FormatError.make({ format: "gzip", file: "a.gz", reason: "x" }).message, "a.gz: x")
  })

  it("never quotes more than ~200 characters of data", () => {
    const error = FormatError.make({ format: "jsonl", line: 1, reason: `bad ${"x".repeat(10_000)}` })
    assert.isAtMost(error.reason.length, FormatError.maxSnippet + 81)
    assert.isTrue(error.message.endsWith("…"))
    assert.strictEqual(FormatError.snippet("short"), "short")
  })

  it.effect("is a tagged, yieldable error", () =>
    Effect.gen(function* () {
      const result = yield* Effect.flip(
        Effect.gen(function* () {
          return yield* FormatError.make({ format: "csv", reason: "boom" })
        })
      )
      assert.strictEqual(result._tag, "FormatError")
      assert.strictEqual(result.format, "csv")
    })
  )
})
