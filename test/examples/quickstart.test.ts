import * as fs from "node:fs"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { amountBand, quickstart } from "../../examples/quickstart.ts"
import * as File from "../../src/connectors/file/File.ts"
import * as FileStore from "../../src/connectors/file/FileStore.ts"
import * as Sink from "../../src/core/Sink.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as Contracts from "../../src/schema/Contracts.ts"

const data = fs.readFileSync(nodePath.resolve(import.meta.dirname, "../../examples/data/transactions.jsonl"))

describe("examples/quickstart.ts with test layers", () => {
  it.effect("runs on an in-memory file store and writes settled transactions as Avro", () => {
    const files = FileStore.memory({ "examples/data/transactions.jsonl": data })
    return Effect.gen(function* () {
      const report = yield* Pipeline.run(quickstart)
      assert.strictEqual(report.status, "succeeded")
      assert.strictEqual(report.records.read, 2000)
      assert.strictEqual(
        report.records.read,
        report.records.written + report.records.filtered + report.records.rejected
      )
      assert.isTrue(FileStore.contents(files).has("examples/out/settled-typed/_SUCCESS"))

      const out = Sink.collect<Record<string, unknown>>("check")
      yield* Pipeline.from(File.source({ path: "examples/out/settled-typed" })).pipe(Pipeline.to(out), Pipeline.run)
      const settled = out.collected().records
      assert.strictEqual(settled.length, report.records.written)
      for (const t of settled) {
        assert.strictEqual(t.status, "settled")
        assert.instanceOf(t.eventTime, Date)
        assert.isTrue(BigDecimal.isBigDecimal(t.amount))
        assert.strictEqual(t.amountBand, amountBand(t.amount as BigDecimal.BigDecimal))
      }
      const dead = yield* Stream.runCollect(
        Stream.fromIterable(
          Array.from(FileStore.contents(files).keys()).filter((k) =>
            k.startsWith("examples/out/dead-letters-typed/part-")
          )
        )
      )
      assert.strictEqual(dead.length, 1)
    }).pipe(Effect.provide(FileStore.layerMemory(files)))
  })

  it("bands amounts at 100 and 1000", () => {
    const band = (s: string) => amountBand(BigDecimal.fromStringUnsafe(s))
    assert.deepStrictEqual(["0.01", "99.99", "100.00", "999.99", "1000.00"].map(band), [
      "small",
      "small",
      "medium",
      "medium",
      "large"
    ])
    assert.isDefined(Contracts.Transaction)
  })
})
