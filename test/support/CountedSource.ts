/**
 * A SQL table source that counts the rows it validates with the whole record schema: the column guarantees are
 * working when a read of rows the columns guarantee makes no such call (see `ColumnGuarantees.ts`).
 */
import type * as Context from "effect/Context"
import type * as Schema from "effect/Schema"
import type { Row, SqlClient } from "../../src/connectors/sql/SqlClient.ts"
import * as SqlTable from "../../src/connectors/sql/SqlTable.ts"

export const countedSource = <S extends Schema.Top, E, Id>(
  system: SqlTable.System<E>,
  tag: Context.Key<Id, SqlClient<E>>,
  table: string,
  schema: S
) => {
  let calls = 0
  const validate = SqlTable.typeValidator(schema)
  const source = SqlTable.source<S["Type"], E, Id>(
    system,
    tag,
    {
      name: table,
      relation: { _tag: "Table", ref: { name: table } },
      columns: SqlTable.structFields(schema),
      batchSize: 2,
      validate: (row: Row) => {
        calls++
        return validate(row)
      },
      schema
    },
    table
  )
  return { source, calls: () => calls }
}
