import { assert, describe, it } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Schema from "effect/Schema"
import * as ColumnGuarantees from "../../../../src/connectors/sql/internal/ColumnGuarantees.ts"
import type { Column } from "../../../../src/connectors/sql/SqlTypes.ts"
import * as AvroBridge from "../../../../src/schema/AvroBridge.ts"

const Txn = Schema.Struct({
  id: AvroBridge.long,
  user_id: Schema.String,
  amount: AvroBridge.decimal({ precision: 12, scale: 2 }),
  note: Schema.NullOr(Schema.String),
  created_at: AvroBridge.timestampMillis
})

const txnColumns: ReadonlyArray<Column> = [
  { name: "id", kind: "bigint", dbType: "bigint", nullable: false },
  { name: "user_id", kind: "text", dbType: "text", nullable: false },
  { name: "amount", kind: "decimal", dbType: "numeric(12,2)", nullable: false },
  { name: "note", kind: "text", dbType: "text", nullable: true },
  { name: "created_at", kind: "timestamptz", dbType: "timestamp(3) with time zone", nullable: false }
]

const txn = {
  id: 1,
  user_id: "u1",
  amount: BigDecimal.fromStringUnsafe("12.30"),
  note: null,
  created_at: new Date(0)
}

const planOf = (schema: Schema.Top, columns: ReadonlyArray<Column>) => {
  const plan = ColumnGuarantees.plan(schema, columns)
  assert.isDefined(plan)
  return plan!
}

describe("ColumnGuarantees", () => {
  it("guarantees every field of a table whose column types match the schema", () => {
    const plan = planOf(Txn, txnColumns)
    assert.deepStrictEqual(plan.validated, [])
    assert.deepStrictEqual(plan.guaranteed, ["id", "user_id", "amount", "note", "created_at"])
  })

  it("keeps a type test for decimals and timestamps, which stay text when the server's value does not parse", () => {
    const check = planOf(Txn, txnColumns).check!
    assert.isTrue(check(txn))
    assert.isFalse(check({ ...txn, amount: "NaN" }))
    assert.isFalse(check({ ...txn, created_at: "infinity" }))
  })

  it("needs no per-row work when no field can be left unparsed", () => {
    const Plain = Schema.Struct({ id: AvroBridge.long, n: Schema.Number, s: Schema.String, b: Schema.Boolean })
    const plan = planOf(Plain, [
      { name: "id", kind: "bigint", dbType: "bigint", nullable: false },
      { name: "n", kind: "int", dbType: "integer", nullable: false },
      { name: "s", kind: "uuid", dbType: "uuid", nullable: false },
      { name: "b", kind: "boolean", dbType: "boolean", nullable: false }
    ])
    assert.isUndefined(plan.check)
    assert.deepStrictEqual(plan.validated, [])
  })

  it("validates a non-null field over a nullable column", () => {
    const plan = planOf(
      Txn,
      txnColumns.map((c) => (c.name === "user_id" ? { ...c, nullable: true } : c))
    )
    assert.deepStrictEqual(plan.validated, ["user_id"])
    assert.isFalse(plan.check!({ ...txn, user_id: null }))
    assert.isTrue(plan.check!(txn))
  })

  it("validates enums, uuids, patterns and ranges over text and wider columns", () => {
    const Checked = Schema.Struct({
      status: Schema.Literals(["new", "paid"]),
      ref: AvroBridge.uuid,
      code: Schema.String.check(Schema.isPattern(/^[A-Z]{3}$/)),
      small: AvroBridge.int,
      amount: AvroBridge.decimal({ precision: 6, scale: 2 }),
      scaled: AvroBridge.decimal({ precision: 12, scale: 1 }),
      positive: AvroBridge.long.check(Schema.isGreaterThan(0))
    })
    const plan = planOf(Checked, [
      { name: "status", kind: "text", dbType: "text", nullable: false },
      { name: "ref", kind: "text", dbType: "text", nullable: false },
      { name: "code", kind: "text", dbType: "text", nullable: false },
      { name: "small", kind: "bigint", dbType: "bigint", nullable: false },
      { name: "amount", kind: "decimal", dbType: "numeric(12,2)", nullable: false },
      { name: "scaled", kind: "decimal", dbType: "numeric(12,2)", nullable: false },
      { name: "positive", kind: "bigint", dbType: "bigint", nullable: false }
    ])
    assert.deepStrictEqual(plan.guaranteed, [])
    assert.deepStrictEqual(plan.validated, ["status", "ref", "code", "small", "amount", "scaled", "positive"])
  })

  it("guarantees a uuid field over a uuid column and a wider decimal over a narrower numeric", () => {
    const S = Schema.Struct({ ref: AvroBridge.uuid, amount: AvroBridge.decimal({ precision: 14, scale: 4 }) })
    const plan = planOf(S, [
      { name: "ref", kind: "uuid", dbType: "uuid", nullable: false },
      { name: "amount", kind: "decimal", dbType: "numeric(12,2)", nullable: false }
    ])
    assert.deepStrictEqual(plan.validated, [])
  })

  it("validates whole records when the schema is not a plain struct or a field is not read", () => {
    assert.isUndefined(ColumnGuarantees.plan(Txn.check(Schema.makeFilter(() => undefined)), txnColumns))
    assert.isUndefined(ColumnGuarantees.plan(Txn, txnColumns.slice(1)))
  })

  it("validates an int field over an unsigned int column, and the columns a client's reads do not type", () => {
    const Counted = Schema.Struct({ id: AvroBridge.long, qty: AvroBridge.int, label: Schema.String })
    const columns: ReadonlyArray<Column> = [
      { name: "id", kind: "bigint", dbType: "bigint(20) unsigned", nullable: false },
      { name: "qty", kind: "int", dbType: "int(10) unsigned", nullable: false },
      { name: "label", kind: "text", dbType: "point", nullable: false }
    ]
    // A long over a bigint unsigned is guaranteed (the reads reject what is beyond 2^53); an int over an int unsigned
    // is not.
    assert.deepStrictEqual(planOf(Counted, columns).validated, ["qty"])
    const typed = (c: Column) => c.dbType !== "point"
    const plan = ColumnGuarantees.plan(Counted, columns, typed)!
    assert.deepStrictEqual(plan.validated, ["qty", "label"])
    assert.isTrue(plan.check!({ id: 1, qty: 5, label: "x" }))
    assert.isFalse(plan.check!({ id: 1, qty: 4294967295, label: "x" }))
    assert.isFalse(plan.check!({ id: 1, qty: 5, label: { x: 1, y: 2 } }))
  })
})
