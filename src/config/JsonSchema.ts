/**
 * The JSON Schema of pipeline configs, generated from the config Schema (the single source of truth) and checked in
 * as `schemas/pipeline-config.schema.json` for editors. `npm run gen:schema` rewrites it; a test fails when it is stale,
 * and another validates every example config against it.
 *
 * It follows the loader's rules: objects take no keys they do not declare; wherever a config takes a string, a
 * `{"$env": ...}` or `{"$secret": ...}` reference may stand instead (the loader replaces it by a string before
 * decoding); duration strings have the loader's pattern; enums list only the values the loader accepts.
 */
import * as Schema from "effect/Schema"
import { Reference } from "./Load.ts"
import { PipelineConfig } from "./PipelineConfig.ts"

type Node = Record<string, unknown>

const isNode = (v: unknown): v is Node => typeof v === "object" && v !== null && !Array.isArray(v)

/** Objects in configs never take keys they do not declare (a record's keys are its pattern's). */
const closeObject = (node: Node): Node => {
  if (node.type !== "object") return node
  if (typeof node.properties === "object" && node.additionalProperties === true)
    return { ...node, additionalProperties: false }
  if (
    typeof node.patternProperties === "object" &&
    (node.additionalProperties === undefined || node.additionalProperties === true)
  )
    return { ...node, additionalProperties: false }
  return node
}

/**
 * An enum narrowed by a filter (`{"enum": [a, b, c], "allOf": [{"enum": [a, b]}]}`, the shape of a literal union with
 * a check) as the one enum it means, which editors can offer.
 */
const narrowEnum = (node: Node): Node => {
  if (!Array.isArray(node.enum) || !Array.isArray(node.allOf)) return node
  const narrowing = node.allOf.filter(
    (s): s is Node =>
      isNode(s) && Array.isArray(s.enum) && Object.keys(s).every((k) => k === "enum" || k === "description")
  )
  if (narrowing.length === 0) return node
  let allowed: ReadonlyArray<unknown> = node.enum
  let description = node.description
  for (const s of narrowing) {
    allowed = allowed.filter((v) => (s.enum as ReadonlyArray<unknown>).includes(v))
    description ??= s.description
  }
  const rest = node.allOf.filter((s) => !narrowing.includes(s as Node))
  const { allOf: _, ...out } = node
  return {
    ...out,
    enum: allowed,
    ...(description === undefined ? {} : { description }),
    ...(rest.length === 0 ? {} : { allOf: rest })
  }
}

/** True for a schema whose values are strings: where a reference may stand instead. */
const takesString = (node: Node): boolean =>
  node.type === "string" ||
  (node.type === undefined &&
    ((Array.isArray(node.enum) && node.enum.every((v) => typeof v === "string")) || typeof node.const === "string"))

const referenceRef = { $ref: "#/$defs/Reference" }

/** A string schema, or a reference in its place; the description stays on the outside, where editors show it. */
const orReference = (node: Node): Node => {
  const { description, ...rest } = node
  return { ...(description === undefined ? {} : { description }), anyOf: [rest, referenceRef] }
}

/**
 * Applies the rules above to every schema of a document. `value` is false for schemas that do not stand for a value
 * of their own: the conjuncts of an `allOf`, and `propertyNames` (keys are never references).
 */
const rewrite = (node: unknown, value = true): unknown => {
  if (Array.isArray(node)) return node.map((n) => rewrite(n, value))
  if (!isNode(node)) return node
  const out: Node = {}
  for (const [k, v] of Object.entries(node)) {
    if (k === "properties" || k === "patternProperties" || k === "$defs") {
      const children: Node = {}
      for (const [name, child] of Object.entries(v as Node)) children[name] = rewrite(child)
      out[k] = children
    } else out[k] = rewrite(v, k !== "propertyNames" && k !== "allOf")
  }
  const shaped = narrowEnum(closeObject(out))
  return value && takesString(shaped) ? orReference(shaped) : shaped
}

/** Closes every object of a schema (and nothing else): for the references' own schemas. */
const closeAll = (node: unknown): unknown => {
  if (Array.isArray(node)) return node.map(closeAll)
  if (!isNode(node)) return node
  const out: Node = {}
  for (const [k, v] of Object.entries(node)) out[k] = closeAll(v)
  return closeObject(out)
}

/** The JSON Schema document (draft 2020-12) of a pipeline config. */
export const document = (): Record<string, unknown> => {
  const config = Schema.toJsonSchemaDocument(PipelineConfig)
  const reference = Schema.toJsonSchemaDocument(Reference)
  const definitions: Node = {}
  for (const [name, schema] of Object.entries(config.definitions)) definitions[name] = rewrite(schema)
  // The references' own fields are plain strings: a reference inside a reference is not resolved.
  for (const [name, schema] of Object.entries(reference.definitions)) definitions[name] = closeAll(schema)
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "effect-etl pipeline config",
    ...(rewrite(config.schema) as Node),
    $defs: definitions
  }
}

/** The text of `schemas/pipeline-config.schema.json`. */
export const text = (): string => `${JSON.stringify(document(), null, 2)}\n`
