/**
 * How connectors name the datasets they read and write, after OpenLineage's dataset naming spec
 * (https://openlineage.io/docs/spec/naming): a namespace saying where the data lives (`file`, `s3://bucket`,
 * `postgres://host:port`, `kafka://host:port`) and a name saying what it is there. Namespaces are built from host and
 * port only: a URL's user name and password never reach them.
 *
 * The fields of a dataset (OpenLineage's schema facet) come from a record schema when it tells them: the Avro schema's
 * fields and types, else its field names with the CSV column types it knows.
 */
import type * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import type { RecordSchema } from "../../core/RecordSchema.ts"
import type { Dataset } from "../../core/Stage.ts"

/** The fields of a dataset, as `Dataset.fields` holds them. */
export type Fields = NonNullable<Dataset["fields"]>

/** A host and a port, as a namespace or a span attribute names them. */
export interface Server {
  readonly host: string
  readonly port: number
}

/**
 * The host and port of a `host:port` address or of a URL (`postgres://user:secret@db:5432/app`), without any user
 * name or password; `undefined` when there is no host.
 *
 * @example
 * serverOf("broker-1:9093", 9092) // { host: "broker-1", port: 9093 }
 */
export const serverOf = (address: string, defaultPort: number): Server | undefined => {
  const text = address.trim()
  if (text === "") return undefined
  const url = parseUrl(text.includes("://") ? text : `tcp://${text}`)
  if (url === undefined || url.hostname === "") return undefined
  const port = url.port === "" ? defaultPort : Number(url.port)
  return { host: url.hostname.replace(/^\[(.*)\]$/, "$1"), port }
}

const parseUrl = (text: string): URL | undefined => URL.parse(text) ?? undefined

/** The database a connection URL names in its path (`/app` in `postgres://db/app`), if any. */
export const databaseOf = (url: string): string | undefined => {
  const parsed = parseUrl(url)
  if (parsed === undefined) return undefined
  const path = decodeURIComponent(parsed.pathname.replace(/^\/+/, "")).split("/")[0]
  return path === undefined || path === "" ? undefined : path
}

/** `scheme://host:port`, with an IPv6 host in brackets. */
export const namespaceOf = (scheme: string, server: Server): string =>
  `${scheme}://${server.host.includes(":") ? `[${server.host}]` : server.host}:${server.port}`

/** The type name of an Avro type: its logical type, else its type (`long`, `string`, `record`); a nullable's branch. */
const avroTypeName = (type: unknown): string => {
  if (typeof type === "string") return type
  if (Array.isArray(type)) {
    const branches = type.filter((branch) => branch !== "null")
    return branches.length === 1 ? avroTypeName(branches[0]) : "union"
  }
  if (typeof type === "object" && type !== null) {
    const named = type as { readonly type?: unknown; readonly logicalType?: unknown }
    if (typeof named.logicalType === "string") return named.logicalType
    return avroTypeName(named.type)
  }
  return "unknown"
}

/** The JSON of an Avro schema: a compiled avsc type gives it back with `schema()`. */
const avroJson = (avro: unknown): unknown => {
  const compiled = avro as { readonly schema?: (options: { readonly exportAttrs: boolean }) => unknown } | undefined
  return typeof compiled?.schema === "function" ? compiled.schema({ exportAttrs: true }) : avro
}

/** The fields of an Avro record schema with their types; `undefined` when it is not a record. */
export const fieldsOfAvro = (avro: unknown): Fields | undefined => {
  const json = avroJson(avro) as { readonly type?: unknown; readonly fields?: unknown } | undefined
  if (typeof json !== "object" || json === null || json.type !== "record" || !Array.isArray(json.fields))
    return undefined
  return (json.fields as ReadonlyArray<{ readonly name: string; readonly type: unknown }>).map((field) => ({
    name: field.name,
    type: avroTypeName(field.type)
  }))
}

/**
 * The fields of a record schema: the Avro schema's when it has one, else its field names typed by the CSV column
 * types it knows (`unknown` for the others); `undefined` when it does not name its fields.
 */
export const fieldsOf = (schema: RecordSchema<unknown> | undefined): Fields | undefined => {
  if (schema === undefined) return undefined
  const avro = schema.avro === undefined ? undefined : fieldsOfAvro(schema.avro)
  if (avro !== undefined) return avro
  return schema.fields?.map((name) => ({ name, type: schema.columns?.[name] ?? "unknown" }))
}

/** The type name of a record value's AST: `string`, `number`, `Date`, `BigDecimal`, ...; a nullable's member. */
const astTypeName = (ast: SchemaAST.AST): string => {
  switch (ast._tag) {
    case "String":
    case "TemplateLiteral":
      return "string"
    case "Number":
      return "number"
    case "Boolean":
      return "boolean"
    case "BigInt":
      return "bigint"
    case "Literal":
      return typeof ast.literal
    case "Enum":
      return "enum"
    case "Objects":
      return "object"
    case "Arrays":
      return "array"
    case "Union": {
      const members = ast.types.filter((t) => t._tag !== "Null" && t._tag !== "Undefined").map(astTypeName)
      const kinds = new Set(members)
      return kinds.size === 1 ? members[0]! : "union"
    }
    case "Declaration": {
      const id = (ast.annotations?.representation as { readonly id?: unknown } | undefined)?.id
      return typeof id === "string" ? (id.split("/").pop() ?? "unknown") : "unknown"
    }
    default:
      return "unknown"
  }
}

/** The fields of a struct Schema with the types of their record values; `undefined` when it is not a struct. */
export const fieldsOfSchema = (schema: Schema.Top): Fields | undefined => {
  const ast = SchemaAST.toType(schema.ast)
  if (ast._tag !== "Objects") return undefined
  return ast.propertySignatures.map((p) => ({ name: String(p.name), type: astTypeName(p.type) }))
}

/** A dataset, with its fields when they are known. */
export const make = (namespace: string, name: string, fields?: Fields | undefined): Dataset => ({
  namespace,
  name,
  ...(fields === undefined || fields.length === 0 ? {} : { fields })
})
