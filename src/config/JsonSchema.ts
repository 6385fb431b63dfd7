/**
 * The JSON Schema of pipeline configs, generated from the config Schema (the single source of truth) and checked in
 * as `schemas/pipeline-config.schema.json` for editors. `npm run gen:schema` rewrites it; a test fails when it is stale.
 */
import * as Schema from "effect/Schema"
import { PipelineConfig } from "./PipelineConfig.ts"

/** Objects in configs never take keys they do not declare. */
const closeObjects = (node: unknown): unknown => {
  if (Array.isArray(node)) return node.map(closeObjects)
  if (typeof node !== "object" || node === null) return node
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(node)) out[k] = closeObjects(v)
  if (out.type === "object" && typeof out.properties === "object" && out.additionalProperties === true)
    out.additionalProperties = false
  return out
}

/** The JSON Schema document (draft 2020-12) of a pipeline config. */
export const document = (): Record<string, unknown> => {
  const doc = Schema.toJsonSchemaDocument(PipelineConfig)
  return closeObjects({
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "effect-etl pipeline config",
    ...doc.schema,
    ...(Object.keys(doc.definitions).length === 0 ? {} : { $defs: doc.definitions })
  }) as Record<string, unknown>
}

/** The text of `schemas/pipeline-config.schema.json`. */
export const text = (): string => `${JSON.stringify(document(), null, 2)}\n`
