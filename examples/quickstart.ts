/**
 * The quickstart as a typed program: the same pipeline as examples/quickstart.json, with the record type checked from
 * source to sink. Run it with `node dist/main.js run examples/quickstart.ts`, or test it with test layers (see
 * test/examples/quickstart.test.ts).
 */
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as File from "../src/connectors/file/File.ts"
import * as RecordSchema from "../src/core/RecordSchema.ts"
import * as Pipeline from "../src/pipeline/Pipeline.ts"
import * as AvroBridge from "../src/schema/AvroBridge.ts"
import * as Contracts from "../src/schema/Contracts.ts"
import * as Rule from "../src/transforms/Rule.ts"

/** A settled transaction with its amount band: what the quickstart writes. */
export const SettledTransaction = Schema.Struct({
  ...Contracts.Transaction.fields,
  amountBand: Schema.Literals(["small", "medium", "large"])
})

// Schemas written in code are checked once, when the module loads.
const settledAvro = Effect.runSync(
  AvroBridge.fromSchema(SettledTransaction, { name: "SettledTransaction", namespace: Contracts.namespace })
)

const hundred = BigDecimal.fromNumberUnsafe(100)
const thousand = BigDecimal.fromNumberUnsafe(1000)

/** small below 100, medium below 1000, large from 1000. */
export const amountBand = (amount: BigDecimal.BigDecimal): "small" | "medium" | "large" =>
  BigDecimal.isLessThan(amount, hundred) ? "small" : BigDecimal.isLessThan(amount, thousand) ? "medium" : "large"

/** The quickstart pipeline; its `R` is exactly `FileStore`. */
export const quickstart = Pipeline.from(
  File.source({
    name: "source",
    path: "examples/data/transactions.jsonl",
    schema: RecordSchema.fromSchema(Contracts.Transaction, "transaction")
  })
).pipe(
  Pipeline.validate([
    Rule.range("amount", { min: 0, exclusiveMin: true }),
    Rule.pattern("currency", /^[A-Z]{3}$/),
    Rule.notNull("merchant", { onFail: "warn" })
  ]),
  Pipeline.filter((t) => t.status === "settled"),
  Pipeline.derive({ amountBand: (t: Contracts.Transaction) => amountBand(t.amount) }),
  Pipeline.to(
    File.sink<typeof SettledTransaction.Type>({
      name: "sink",
      path: "examples/out/settled-typed",
      format: { type: "avro", codec: "deflate" },
      mode: "overwrite",
      schema: { ...RecordSchema.fromSchema(SettledTransaction), avro: AvroBridge.toAvroType(settledAvro) }
    })
  ),
  Pipeline.withDeadLetters(
    File.sink({
      name: "dead-letters",
      path: "examples/out/dead-letters-typed",
      format: { type: "jsonl" },
      mode: "overwrite"
    })
  ),
  Pipeline.named("quickstart-typed"),
  Pipeline.withQuality({ maxRejectedRatio: 0.05 })
)

export default quickstart
