/**
 * The @aws-sdk/client-s3 driver of the S3 client contract: the only file that imports the AWS SDK.
 *
 * Failures are mapped to reasons in {@link classifyError} from the SDK error's name/code, HTTP status and Node's socket
 * error codes. Credentials are `Redacted` until they are handed to the SDK; no message contains them.
 */
import { createHash } from "node:crypto"
import type { Readable } from "node:stream"
import {
  AbortMultipartUploadCommand,
  S3Client as AwsS3Client,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand
} from "@aws-sdk/client-s3"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { type ConnectionOptions, S3Client, type S3ClientShape } from "./S3Client.ts"
import { reasonOf, S3Error } from "./S3Error.ts"

interface SdkError {
  readonly name?: string
  readonly code?: string
  readonly Code?: string
  readonly message?: string
  readonly $metadata?: { readonly httpStatusCode?: number }
  readonly $response?: { readonly statusCode?: number }
  readonly cause?: unknown
}

/** Maps an SDK (or socket) failure to a reason. */
export const classifyReason = (error: unknown) => {
  const e = (error ?? {}) as SdkError
  const name = e.Code ?? e.name
  const errno = typeof e.code === "string" ? e.code : (e.cause as SdkError | undefined)?.code
  return reasonOf({
    status: e.$metadata?.httpStatusCode ?? e.$response?.statusCode,
    code: name === "Error" ? undefined : name,
    errno
  })
}

/** Wraps an SDK failure into an S3Error naming the operation, bucket and key. */
export const classifyError =
  (operation: string, bucket: string, key?: string) =>
  (cause: unknown): S3Error => {
    const reason = classifyReason(cause)
    const text = cause instanceof Error ? cause.message : String(cause)
    return new S3Error({
      reason,
      operation,
      bucket,
      key,
      message: `S3 ${operation} ${key === undefined ? `s3://${bucket}` : `s3://${bucket}/${key}`} failed (${reason._tag}): ${text}`,
      cause
    })
  }

/** Builds the client; the SDK client is destroyed when the Scope closes. */
export const make = Effect.fn("NodeS3.make")(function* (options: ConnectionOptions) {
  const credentials =
    options.accessKeyId !== undefined && options.secretAccessKey !== undefined
      ? {
          accessKeyId: Redacted.value(options.accessKeyId),
          secretAccessKey: Redacted.value(options.secretAccessKey),
          ...(options.sessionToken === undefined ? {} : { sessionToken: Redacted.value(options.sessionToken) })
        }
      : undefined
  const sdk = yield* Effect.acquireRelease(
    Effect.sync(
      () =>
        new AwsS3Client({
          region: options.region ?? "us-east-1",
          ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
          forcePathStyle: options.forcePathStyle ?? false,
          maxAttempts: options.maxAttempts ?? 3,
          ...(credentials === undefined ? {} : { credentials }),
          // S3-compatible servers may not implement the newer default checksums.
          requestChecksumCalculation: "WHEN_REQUIRED",
          responseChecksumValidation: "WHEN_REQUIRED"
        })
    ),
    (client) => Effect.sync(() => client.destroy())
  )
  // DeleteObjects must carry a checksum: the SDK now sends CRC32, which S3-compatible servers (S3Proxy, older MinIO,
  // Ceph) reject as not implemented. Content-MD5 is what every implementation accepts.
  sdk.middlewareStack.add(
    ((next: (args: { request: unknown }) => Promise<unknown>) => async (args: { request: unknown }) => {
      const request = args.request as {
        method?: string
        query?: Record<string, unknown>
        headers?: Record<string, string>
        body?: unknown
      }
      if (
        request.method === "POST" &&
        request.query !== undefined &&
        "delete" in request.query &&
        typeof request.body === "string"
      ) {
        const headers = request.headers ?? {}
        for (const name of Object.keys(headers))
          if (name.toLowerCase().startsWith("x-amz-checksum-") || name.toLowerCase() === "x-amz-sdk-checksum-algorithm")
            delete headers[name]
        headers["content-md5"] = createHash("md5").update(request.body).digest("base64")
      }
      return next(args)
    }) as never,
    // Last in the build step: after the SDK added its checksum, before the request is signed.
    { step: "build", priority: "low", name: "effectEtlContentMd5" }
  )
  const call = <A>(
    operation: string,
    bucket: string,
    key: string | undefined,
    f: (signal: AbortSignal) => Promise<A>
  ) => Effect.tryPromise({ try: f, catch: classifyError(operation, bucket, key) })

  const client: S3ClientShape = {
    createBucket: (bucket) =>
      call("createBucket", bucket, undefined, (abortSignal) =>
        sdk.send(new CreateBucketCommand({ Bucket: bucket }), { abortSignal })
      ).pipe(
        Effect.catchIf(
          (e) => /BucketAlreadyOwnedByYou/.test(String((e.cause as SdkError | undefined)?.name)),
          () => Effect.void
        ),
        Effect.asVoid
      ),
    list: (bucket, prefix, listOptions) =>
      call("list", bucket, prefix, async (abortSignal) => {
        const out = await sdk.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: prefix,
            ...(listOptions?.continuationToken === undefined
              ? {}
              : { ContinuationToken: listOptions.continuationToken }),
            ...(listOptions?.maxKeys === undefined ? {} : { MaxKeys: listOptions.maxKeys })
          }),
          { abortSignal }
        )
        return {
          objects: (out.Contents ?? []).map((o) => ({ key: o.Key ?? "", size: o.Size ?? 0 })),
          continuationToken: out.IsTruncated === true ? out.NextContinuationToken : undefined
        }
      }),
    get: (bucket, key, range) =>
      Stream.unwrap(
        Effect.map(
          call("get", bucket, key, (abortSignal) =>
            sdk.send(
              new GetObjectCommand({
                Bucket: bucket,
                Key: key,
                ...(range === undefined ? {} : { Range: `bytes=${range.start}-${range.end}` })
              }),
              { abortSignal }
            )
          ),
          (out) =>
            Stream.fromAsyncIterable(
              out.Body as Readable as AsyncIterable<Uint8Array>,
              classifyError("get", bucket, key)
            ).pipe(Stream.ensuring(Effect.sync(() => (out.Body as Readable | undefined)?.destroy?.())))
        )
      ),
    put: (bucket, key, body) =>
      call("put", bucket, key, (abortSignal) =>
        sdk.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.length }), {
          abortSignal
        })
      ).pipe(Effect.asVoid),
    createMultipartUpload: (bucket, key) =>
      Effect.flatMap(
        call("createMultipartUpload", bucket, key, (abortSignal) =>
          sdk.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }), { abortSignal })
        ),
        (out) =>
          out.UploadId === undefined
            ? Effect.fail(
                classifyError("createMultipartUpload", bucket, key)(new Error("the server returned no UploadId"))
              )
            : Effect.succeed(out.UploadId)
      ),
    uploadPart: (bucket, key, uploadId, partNumber, body) =>
      Effect.map(
        call("uploadPart", bucket, key, (abortSignal) =>
          sdk.send(
            new UploadPartCommand({
              Bucket: bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: partNumber,
              Body: body,
              ContentLength: body.length
            }),
            { abortSignal }
          )
        ),
        (out) => out.ETag ?? ""
      ),
    completeMultipartUpload: (bucket, key, uploadId, parts) =>
      call("completeMultipartUpload", bucket, key, (abortSignal) =>
        sdk.send(
          new CompleteMultipartUploadCommand({
            Bucket: bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) }
          }),
          { abortSignal }
        )
      ).pipe(Effect.asVoid),
    abortMultipartUpload: (bucket, key, uploadId) =>
      call("abortMultipartUpload", bucket, key, (abortSignal) =>
        sdk.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }), { abortSignal })
      ).pipe(Effect.asVoid),
    copy: (bucket, from, to) =>
      call("copy", bucket, to, (abortSignal) =>
        sdk.send(
          new CopyObjectCommand({
            Bucket: bucket,
            Key: to,
            CopySource: `${bucket}/${from.split("/").map(encodeURIComponent).join("/")}`
          }),
          { abortSignal }
        )
      ).pipe(Effect.asVoid),
    deleteMany: (bucket, keys) =>
      Effect.forEach(
        Array.from({ length: Math.ceil(keys.length / 1000) }, (_, i) => keys.slice(i * 1000, i * 1000 + 1000)),
        (chunk) =>
          Effect.flatMap(
            call("deleteMany", bucket, undefined, (abortSignal) =>
              sdk.send(
                new DeleteObjectsCommand({
                  Bucket: bucket,
                  Delete: { Objects: chunk.map((Key) => ({ Key })), Quiet: true }
                }),
                {
                  abortSignal
                }
              )
            ),
            (out) => {
              const failed = (out.Errors ?? []).filter((e) => e.Code !== "NoSuchKey")
              return failed.length === 0
                ? Effect.void
                : Effect.fail(
                    classifyError(
                      "deleteMany",
                      bucket,
                      failed[0]!.Key
                    )(
                      Object.assign(
                        new Error(`${failed.length} objects not deleted: ${failed[0]!.Message ?? failed[0]!.Code}`),
                        {
                          name: failed[0]!.Code ?? "Error"
                        }
                      )
                    )
                  )
            }
          ),
        { discard: true }
      )
  }
  return client
})

/**
 * The AWS SDK client as a layer.
 *
 * @example
 * program.pipe(Effect.provide(NodeS3.layer({ endpoint: "http://127.0.0.1:9000", forcePathStyle: true })))
 */
export const layer = (options: ConnectionOptions): Layer.Layer<S3Client> => Layer.effect(S3Client, make(options))
