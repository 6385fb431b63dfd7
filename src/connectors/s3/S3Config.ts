import * as Schema from "effect/Schema"
import {
  BatchSize,
  Concurrency,
  intBetween,
  NonEmpty,
  PositiveInt,
  StageName,
  UnknownFields
} from "../../core/ConfigFields.ts"
import { FormatConfig } from "../../core/FormatConfig.ts"
import type * as S3Client from "./S3Client.ts"

const secret = (description: string) =>
  Schema.RedactedFromValue(
    Schema.String.annotate({
      description,
      message: "Expected a string, got a value that is not shown (it may be a secret)"
    })
  )

const connectionFields = {
  endpoint: Schema.optionalKey(
    NonEmpty.annotate({
      description: "The S3 endpoint, e.g. http://127.0.0.1:9000 for an S3-compatible server (default: AWS)"
    })
  ),
  region: Schema.optionalKey(NonEmpty.annotate({ description: "The region (default us-east-1)" })),
  path_style: Schema.optionalKey(
    Schema.Boolean.annotate({
      description: "Path-style URLs (endpoint/bucket/key), needed by most S3-compatible servers"
    })
  ),
  access_key_id: Schema.optionalKey(secret('The access key id; write {"$env": "AWS_ACCESS_KEY_ID"}')),
  secret_access_key: Schema.optionalKey(secret('The secret access key; write {"$env": "AWS_SECRET_ACCESS_KEY"}'))
}

/** A named S3 connection in a config's `connections`. */
export const ConnectionConfig = Schema.Struct({
  type: Schema.Literal("s3").annotate({ description: "S3 or an S3-compatible store" }),
  ...connectionFields,
  session_token: Schema.optionalKey(
    secret('A session token (temporary credentials); write {"$env": "AWS_SESSION_TOKEN"}')
  )
}).annotate({
  description:
    "An S3 (or S3-compatible) store: one client per run shared by every source and sink naming it; without credentials the AWS SDK's chain applies"
})

/** A decoded S3 connection config. */
export type ConnectionConfig = typeof ConnectionConfig.Type

const inlineFields = {
  connection: Schema.optionalKey(
    NonEmpty.annotate({ description: 'The name of an "s3" connection declared in `connections`' })
  ),
  ...connectionFields
}

/** Either a named connection or inline connection fields, not both. */
const oneConnection = Schema.makeFilter((c: { readonly connection?: string } & Readonly<Record<string, unknown>>) =>
  c.connection !== undefined && Object.keys(connectionFields).some((k) => c[k] !== undefined)
    ? `With "connection", the endpoint, region, path_style and credentials come from the connection "${c.connection}": remove them here`
    : undefined
)

const bucket = NonEmpty.annotate({ description: "The bucket" })
const schemaName = NonEmpty.annotate({ description: "The name of an Avro schema in schemas/" })

/** An S3 source in a config. */
export const SourceConfig = Schema.Struct({
  type: Schema.Literal("s3"),
  name: Schema.optionalKey(StageName),
  ...inlineFields,
  bucket,
  path: Schema.String.annotate({
    description: "A key, a prefix (every object under it) or a glob such as events/2026-*.jsonl.gz"
  }),
  format: Schema.optionalKey(FormatConfig),
  schema: Schema.optionalKey(
    schemaName.annotate({ description: "The name of an Avro schema in schemas/ that every record must match" })
  ),
  unknown_fields: Schema.optionalKey(UnknownFields),
  batch_size: Schema.optionalKey(BatchSize.annotate({ description: "Records per batch (default 4096)" })),
  concurrency: Schema.optionalKey(Concurrency.annotate({ description: "Objects read at once (default 4)" })),
  use_manifest: Schema.optionalKey(
    Schema.Boolean.annotate({
      description: "Read only the objects a _SUCCESS manifest lists, when there is one (default true)"
    })
  )
})
  .check(oneConnection)
  .annotate({ description: "Reads objects from S3 or an S3-compatible store" })

/** An S3 sink in a config. */
export const SinkConfig = Schema.Struct({
  type: Schema.Literal("s3"),
  name: Schema.optionalKey(StageName),
  ...inlineFields,
  bucket,
  path: Schema.String.check(
    Schema.makeFilter((path: string) => {
      const parts = path.split("/").filter((p) => p !== "")
      return parts.length === 0 || parts.some((p) => p === "." || p === "..")
        ? 'Expected a prefix of its own, e.g. "exports/orders": the sink writes under it and an overwrite replaces everything under it, so it cannot be the bucket\'s root or have "." or ".." parts'
        : undefined
    })
  ).annotate({ description: "The prefix part objects are written under (not the bucket's root)" }),
  format: FormatConfig,
  mode: Schema.optionalKey(
    Schema.Literals(["append", "overwrite", "upsert"])
      .check(
        Schema.makeFilter(
          (mode: string) =>
            mode === "upsert"
              ? 'The S3 sink cannot upsert: objects have no keys. Use "append" or "overwrite", or a database sink for upserts'
              : undefined,
          { toJsonSchema: () => ({ enum: ["append", "overwrite"] }) }
        )
      )
      .annotate({
        description: "append (default) adds objects; overwrite replaces the prefix's set behind a _SUCCESS manifest"
      })
  ),
  schema: Schema.optionalKey(
    schemaName.annotate({ description: "The Avro schema of the written records; required for avro" })
  ),
  partition_by: Schema.optionalKey(
    Schema.Array(NonEmpty).annotate({
      description: 'Hive-style partition paths from these fields, e.g. ["date"] → date=2026-11-26/'
    })
  ),
  max_records_per_object: Schema.optionalKey(
    PositiveInt.annotate({ description: "Start a new object after this many records (default 1000000)" })
  ),
  max_bytes_per_object: Schema.optionalKey(
    intBetween(1, 5497558138880, "S3 objects are at most 5 TiB").annotate({
      description: "Start a new object after this many bytes (default 512 MiB)"
    })
  ),
  part_size: Schema.optionalKey(
    intBetween(5 * 1024 * 1024, 5 * 1024 * 1024 * 1024, "S3 parts are at most 5 GiB").annotate({
      description: "Multipart part size in bytes (default 8 MiB, from 5 MiB to 5 GiB)"
    })
  )
})
  .check(oneConnection)
  .annotate({ description: "Writes part objects to S3 or an S3-compatible store" })

/** A decoded S3 source config. */
export type SourceConfig = typeof SourceConfig.Type
/** A decoded S3 sink config. */
export type SinkConfig = typeof SinkConfig.Type

/** The connection options of a named connection, or of a source or sink config's inline fields. */
export const connectionOptions = (c: ConnectionConfig | SourceConfig | SinkConfig): S3Client.ConnectionOptions => ({
  ...(c.endpoint === undefined ? {} : { endpoint: c.endpoint }),
  ...(c.region === undefined ? {} : { region: c.region }),
  ...(c.path_style === undefined ? {} : { forcePathStyle: c.path_style }),
  ...(c.access_key_id === undefined ? {} : { accessKeyId: c.access_key_id }),
  ...(c.secret_access_key === undefined ? {} : { secretAccessKey: c.secret_access_key }),
  ...("session_token" in c && c.session_token !== undefined ? { sessionToken: c.session_token } : {})
})
