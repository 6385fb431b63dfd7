import { assert, describe, it } from "@effect/vitest"
import * as Batch from "../../src/core/Batch.ts"

describe("Batch.concat", () => {
  it("merges positions per part and keeps a checkpoint barrier among the batches", () => {
    const joined = Batch.concat([
      Batch.make([1], { positions: [{ part: "t/0", from: "0", to: "1" }] }),
      { ...Batch.barrier(7), positions: [{ part: "t/1", from: "5", to: "9" }] },
      Batch.make([2, 3], { positions: [{ part: "t/0", from: "1", to: "3" }] })
    ])
    assert.deepStrictEqual(joined.records, [1, 2, 3])
    assert.deepStrictEqual(joined.positions, [
      { part: "t/0", from: "0", to: "3" },
      { part: "t/1", from: "5", to: "9" }
    ])
    assert.strictEqual(joined.barrier?.id, 7)
  })
})
