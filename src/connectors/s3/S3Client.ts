/**
 * The S3 client contract: what the S3 connector needs from an S3-compatible store, with no driver import.
 *
 * `NodeS3.ts` implements it over @aws-sdk/client-s3; {@link layerMemory} keeps objects in memory (deterministic, with
 * the same list pagination and multipart rules), for users' tests. Objects are read as streams; writes of large
 * objects go through multipart uploads driven by the connector, so at most one part is held in memory.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { reasons, S3Error } from "./S3Error.ts"

/** An object found by `list`. */
export interface ObjectInfo {
  readonly key: string
  readonly size: number
}

/** One page of a listing. */
export interface ListPage {
  readonly objects: ReadonlyArray<ObjectInfo>
  /** Pass back to get the next page; `undefined` on the last page. */
  readonly continuationToken: string | undefined
}

/** A byte range, both ends inclusive (as in HTTP). */
export interface Range {
  readonly start: number
  readonly end: number
}

/** What the S3 connector needs from an S3-compatible store. */
export interface S3ClientShape {
  readonly createBucket: (bucket: string) => Effect.Effect<void, S3Error>
  /** One page of ListObjectsV2 under `prefix`, keys in lexicographic order. */
  readonly list: (
    bucket: string,
    prefix: string,
    options?: { readonly continuationToken?: string | undefined; readonly maxKeys?: number | undefined }
  ) => Effect.Effect<ListPage, S3Error>
  /** The bytes of an object (or a range of them), streamed. */
  readonly get: (bucket: string, key: string, range?: Range) => Stream.Stream<Uint8Array, S3Error>
  /** Writes a whole (small) object in one request. */
  readonly put: (bucket: string, key: string, body: Uint8Array) => Effect.Effect<void, S3Error>
  readonly createMultipartUpload: (bucket: string, key: string) => Effect.Effect<string, S3Error>
  /** Uploads part `partNumber` (1-based); returns its ETag. Parts but the last must be at least 5 MiB on AWS. */
  readonly uploadPart: (
    bucket: string,
    key: string,
    uploadId: string,
    partNumber: number,
    body: Uint8Array
  ) => Effect.Effect<string, S3Error>
  readonly completeMultipartUpload: (
    bucket: string,
    key: string,
    uploadId: string,
    parts: ReadonlyArray<{ readonly partNumber: number; readonly etag: string }>
  ) => Effect.Effect<void, S3Error>
  readonly abortMultipartUpload: (bucket: string, key: string, uploadId: string) => Effect.Effect<void, S3Error>
  readonly copy: (bucket: string, from: string, to: string) => Effect.Effect<void, S3Error>
  /** Deletes objects (missing keys are fine), in requests of at most 1000 keys. */
  readonly deleteMany: (bucket: string, keys: ReadonlyArray<string>) => Effect.Effect<void, S3Error>
}

/** The S3 client service. */
export class S3Client extends Context.Service<S3Client, S3ClientShape>()("effect-etl/connectors/s3/S3Client") {}

/** The identifier of the client service of a named S3 connection (a config's `connections`). */
export interface S3Connection<out Name extends string = string> {
  readonly "~effect-etl/S3Connection": Name
}

/**
 * The service key of the client of the named connection `name`: one SDK client per declared connection, shared by
 * every source and sink naming it (see `S3Build.connectionLayer` in config/).
 */
export const connection = <const Name extends string>(name: Name): Context.Service<S3Connection<Name>, S3ClientShape> =>
  Context.Service<S3Connection<Name>, S3ClientShape>(`effect-etl/connectors/s3/S3Client/${name}`)

/** How to reach an S3-compatible store. Credentials default to the AWS SDK's chain (environment, profile, ...). */
export interface ConnectionOptions {
  /** e.g. `http://127.0.0.1:9000` for an S3-compatible server; AWS's endpoint by default. */
  readonly endpoint?: string
  readonly region?: string
  /** Path-style URLs (`endpoint/bucket/key`), needed by most S3-compatible servers. */
  readonly forcePathStyle?: boolean
  readonly accessKeyId?: Redacted.Redacted<string>
  readonly secretAccessKey?: Redacted.Redacted<string>
  readonly sessionToken?: Redacted.Redacted<string>
  /** Attempts per request inside the SDK for transport hiccups (default 3); longer outages are the runtime's. */
  readonly maxAttempts?: number
}

/** Splits an `s3://bucket/key` URL. */
export const parseUrl = (url: string): { readonly bucket: string; readonly key: string } | undefined => {
  const match = /^s3a?:\/\/([^/]+)\/?(.*)$/.exec(url)
  return match === null ? undefined : { bucket: match[1]!, key: match[2]! }
}

// -----------------------------------------------------------------------------
// memory
// -----------------------------------------------------------------------------

/** The state of a memory store, for assertions in tests. */
export interface MemoryStore {
  /** bucket → key → bytes. */
  readonly buckets: Map<string, Map<string, Uint8Array>>
  /** Open multipart uploads: uploadId → parts. */
  readonly uploads: Map<
    string,
    { readonly bucket: string; readonly key: string; readonly parts: Map<number, Uint8Array> }
  >
  /** Keys per list page (default 1000, as S3). */
  readonly pageSize: number
  /** Bytes per chunk of a streamed read (default 64 KiB). */
  readonly chunkSize: number
}

/** A memory store, optionally with buckets and objects (`{ bucket: { key: "text" | bytes } }`). */
export const memory = (
  buckets?: Readonly<Record<string, Readonly<Record<string, string | Uint8Array>>>>,
  options?: { readonly pageSize?: number; readonly chunkSize?: number }
): MemoryStore => {
  const map = new Map<string, Map<string, Uint8Array>>()
  for (const [bucket, objects] of Object.entries(buckets ?? {}))
    map.set(
      bucket,
      new Map(Object.entries(objects).map(([k, v]) => [k, typeof v === "string" ? new TextEncoder().encode(v) : v]))
    )
  return {
    buckets: map,
    uploads: new Map(),
    pageSize: options?.pageSize ?? 1000,
    chunkSize: options?.chunkSize ?? 65536
  }
}

const noBucket = (operation: string, bucket: string) =>
  new S3Error({
    reason: reasons.NoSuchBucket,
    operation,
    bucket,
    message: `S3 ${operation}: bucket ${bucket} does not exist`
  })

/** A deterministic in-memory S3 store over `store`. */
export const makeMemory = (store: MemoryStore): S3ClientShape => {
  const bucketOf = (operation: string, bucket: string) => {
    const objects = store.buckets.get(bucket)
    return objects === undefined ? Effect.fail(noBucket(operation, bucket)) : Effect.succeed(objects)
  }
  let uploadIds = 0
  return {
    createBucket: (bucket) =>
      Effect.sync(() => {
        if (!store.buckets.has(bucket)) store.buckets.set(bucket, new Map())
      }),
    list: (bucket, prefix, options) =>
      Effect.map(bucketOf("list", bucket), (objects) => {
        const keys = [...objects.keys()]
          .filter(
            (k) => k.startsWith(prefix) && (options?.continuationToken === undefined || k > options.continuationToken)
          )
          .sort()
        const size = Math.min(options?.maxKeys ?? store.pageSize, store.pageSize)
        const page = keys.slice(0, size)
        return {
          objects: page.map((key) => ({ key, size: objects.get(key)!.length })),
          continuationToken: keys.length > size ? page[page.length - 1] : undefined
        }
      }),
    get: (bucket, key, range) =>
      Stream.unwrap(
        Effect.flatMap(bucketOf("get", bucket), (objects) => {
          const bytes = objects.get(key)
          if (bytes === undefined)
            return Effect.fail(
              new S3Error({
                reason: reasons.NoSuchKey,
                operation: "get",
                bucket,
                key,
                message: `S3 get: no object ${key} in ${bucket}`
              })
            )
          const body = range === undefined ? bytes : bytes.subarray(range.start, Math.min(range.end + 1, bytes.length))
          const chunks: Array<Uint8Array> = []
          for (let i = 0; i < body.length; i += store.chunkSize) chunks.push(body.subarray(i, i + store.chunkSize))
          return Effect.succeed(Stream.fromIterable(chunks))
        })
      ),
    put: (bucket, key, body) =>
      Effect.map(bucketOf("put", bucket), (objects) => void objects.set(key, Uint8Array.from(body))),
    createMultipartUpload: (bucket, key) =>
      Effect.map(bucketOf("createMultipartUpload", bucket), () => {
        const id = `upload-${++uploadIds}`
        store.uploads.set(id, { bucket, key, parts: new Map() })
        return id
      }),
    uploadPart: (bucket, key, uploadId, partNumber, body) =>
      Effect.suspend(() => {
        const upload = store.uploads.get(uploadId)
        if (upload === undefined)
          return Effect.fail(
            new S3Error({
              reason: reasons.NoSuchKey,
              operation: "uploadPart",
              bucket,
              key,
              message: `S3 uploadPart: no upload ${uploadId}`
            })
          )
        upload.parts.set(partNumber, Uint8Array.from(body))
        return Effect.succeed(`"etag-${partNumber}"`)
      }),
    completeMultipartUpload: (bucket, key, uploadId, parts) =>
      Effect.flatMap(bucketOf("completeMultipartUpload", bucket), (objects) => {
        const upload = store.uploads.get(uploadId)
        if (upload === undefined)
          return Effect.fail(
            new S3Error({
              reason: reasons.NoSuchKey,
              operation: "completeMultipartUpload",
              bucket,
              key,
              message: `S3 completeMultipartUpload: no upload ${uploadId}`
            })
          )
        const chunks = parts.map((p) => upload.parts.get(p.partNumber)!)
        objects.set(key, Buffer.concat(chunks))
        store.uploads.delete(uploadId)
        return Effect.void
      }),
    abortMultipartUpload: (_bucket, _key, uploadId) => Effect.sync(() => void store.uploads.delete(uploadId)),
    copy: (bucket, from, to) =>
      Effect.flatMap(bucketOf("copy", bucket), (objects) => {
        const bytes = objects.get(from)
        if (bytes === undefined)
          return Effect.fail(
            new S3Error({
              reason: reasons.NoSuchKey,
              operation: "copy",
              bucket,
              key: from,
              message: `S3 copy: no object ${from} in ${bucket}`
            })
          )
        objects.set(to, bytes)
        return Effect.void
      }),
    deleteMany: (bucket, keys) =>
      Effect.map(bucketOf("deleteMany", bucket), (objects) => {
        for (const key of keys) objects.delete(key)
      })
  }
}

/**
 * The memory S3 client as a layer.
 *
 * @example
 * const store = S3Client.memory({ lake: { "in/a.jsonl": '{"id":1}\n' } })
 * program.pipe(Effect.provide(S3Client.layerMemory(store)))
 */
export const layerMemory = (store: MemoryStore = memory()): Layer.Layer<S3Client> =>
  Layer.succeed(S3Client, makeMemory(store))
