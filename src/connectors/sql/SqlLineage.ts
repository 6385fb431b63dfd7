/**
 * The datasets and span attributes of SQL tables, after OpenLineage's naming spec (PostgreSQL: namespace
 * `postgres://host:port`, name `database.schema.table`; MySQL: `mysql://host:port`, `database.table`) and
 * OpenTelemetry's database semantic conventions (`db.system.name`, `db.namespace`, `db.collection.name`,
 * `server.address`, `server.port`). The server comes from the connection's options; a URL's user name and password
 * are never read.
 */
import * as Redacted from "effect/Redacted"
import type { RecordSchema } from "../../core/RecordSchema.ts"
import type { Attributes, Dataset } from "../../core/Stage.ts"
import * as Datasets from "../internal/Datasets.ts"
import type { TableRef } from "./Identifier.ts"

/**
 * Where a table's server is: the connection options, or the part of them that names the server (`ConnectionOptions`
 * fits). Fields override the URL's.
 */
export interface Server {
  readonly url?: Redacted.Redacted<string> | string | undefined
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly database?: string | undefined
  /** PostgreSQL: the schema of unqualified table names; MySQL: the database. */
  readonly schema?: string | undefined
}

/** A table's dataset (when its server is known) and its span attributes. */
export interface Lineage {
  readonly dataset?: Dataset | undefined
  readonly attributes: Attributes
}

const defaultPorts = { postgres: 5432, mysql: 3306 } as const

/**
 * The dataset and attributes of a table (or, with `table` undefined, of a query: attributes only) on a server.
 *
 * @example
 * SqlLineage.of("postgres", { host: "db", database: "app" }, { name: "orders" }, fields)
 * // dataset { namespace: "postgres://db:5432", name: "app.public.orders" }
 */
export const of = (
  type: "postgres" | "mysql",
  server: Server | undefined,
  table: TableRef | undefined,
  fields?: Datasets.Fields | undefined
): Lineage => {
  const url =
    server?.url === undefined ? undefined : Redacted.isRedacted(server.url) ? Redacted.value(server.url) : server.url
  const fromUrl = url === undefined ? undefined : Datasets.serverOf(url, defaultPorts[type])
  const host = server?.host ?? fromUrl?.host
  const port = server?.port ?? fromUrl?.port ?? defaultPorts[type]
  const database = server?.database ?? (url === undefined ? undefined : Datasets.databaseOf(url))
  const location = host === undefined ? undefined : { host, port }
  // PostgreSQL names a table database.schema.table (schema "public" by default); MySQL's schema is its database.
  const schema = type === "postgres" ? (table?.schema ?? server?.schema ?? "public") : undefined
  const db = type === "postgres" ? database : (table?.schema ?? server?.schema ?? database)
  const name =
    table === undefined
      ? undefined
      : [db, ...(schema === undefined ? [] : [schema]), table.name].filter((p) => p !== undefined).join(".")
  const namespace = type === "postgres" ? [database, schema].filter((p) => p !== undefined).join("|") : db
  return {
    ...(location === undefined || name === undefined
      ? {}
      : { dataset: Datasets.make(Datasets.namespaceOf(type, location), name, fields) }),
    attributes: {
      "db.system.name": type === "postgres" ? "postgresql" : "mysql",
      ...(namespace === undefined || namespace === "" ? {} : { "db.namespace": namespace }),
      ...(table === undefined
        ? {}
        : { "db.collection.name": table.schema === undefined ? table.name : `${table.schema}.${table.name}` }),
      ...(location === undefined ? {} : { "server.address": location.host, "server.port": location.port })
    }
  }
}

/**
 * The fields of the columns read or written: the record schema's (typed by its Avro schema when it has one), or the
 * column names when only they are known.
 */
export const fieldsOf = (
  schema: RecordSchema<unknown> | undefined,
  columns: ReadonlyArray<string> | undefined
): Datasets.Fields | undefined => {
  const fromSchema = Datasets.fieldsOf(schema)
  return columns === undefined
    ? fromSchema
    : columns.map((name) => ({ name, type: fromSchema?.find((f) => f.name === name)?.type ?? "unknown" }))
}
