/**
 * What the replay tests share: the `txn` record schema (id, amount, currency) and a schema lookup that knows it.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Build from "../../src/config/Build.ts"
import * as ConfigError from "../../src/core/ConfigError.ts"
import * as RecordSchema from "../../src/core/RecordSchema.ts"

export const Txn = Schema.Struct({ id: Schema.String, amount: Schema.Finite, currency: Schema.String })

/** Finds `txn` (as {@link Txn}); any other name is a config error at `path`. */
export const lookup: Build.SchemaLookup = (name, path) =>
  name === "txn"
    ? Effect.succeed(
        RecordSchema.fromSchema(Txn, "txn") as RecordSchema.RecordSchema<Readonly<Record<string, unknown>>>
      )
    : Effect.fail(ConfigError.single("p.json", path, `Unknown schema "${name}"`))
