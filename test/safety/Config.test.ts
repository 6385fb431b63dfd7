import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as JsonSchemaDocument from "effect/JsonSchema"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as SchemaRepresentation from "effect/SchemaRepresentation"
import * as Build from "../../src/config/Build.ts"
import * as Load from "../../src/config/Load.ts"
import type { AnyRecord } from "../../src/config/Records.ts"
import * as File from "../../src/connectors/file/File.ts"
import * as FileStore from "../../src/connectors/file/FileStore.ts"
import * as NodeFileStore from "../../src/connectors/file/NodeFileStore.ts"
import * as ConfigError from "../../src/core/ConfigError.ts"
import * as RecordSchema from "../../src/core/RecordSchema.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as Vault from "../../src/secrets/Vault.ts"
import { PgTest, pgUrl } from "../support/Databases.ts"

const root = nodePath.resolve(import.meta.dirname, "../..")
const file = "pipeline.json"

const base = {
  name: "t",
  source: { type: "file", path: "in" },
  sink: { type: "file", path: "out", format: { type: "jsonl" } }
}

const issuesOf = (value: unknown, env: Readonly<Record<string, string>> = {}) =>
  Load.resolveReferences(file, value, { env }).pipe(
    Effect.flatMap((resolved) => Load.decode(file, resolved.value, resolved.sensitive)),
    Effect.flip,
    Effect.map((e) => e.issues.map((i) => `${i.path}: ${i.message}`))
  )

const nested = (depth: number, open: string, close: string, leaf: string) =>
  `${open.repeat(depth)}${leaf}${close.repeat(depth)}`

const User = Schema.Struct({ id: Schema.Finite, name: Schema.String })
const lookup: Build.SchemaLookup = (name, path) =>
  name === "user"
    ? Effect.succeed(RecordSchema.fromSchema(User, "user") as RecordSchema.RecordSchema<AnyRecord>)
    : Effect.fail(ConfigError.single(file, path, `Unknown schema "${name}"`))

const lines = (text: string | undefined): ReadonlyArray<Record<string, unknown>> =>
  (text ?? "")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>)

const lines2 = (rows: ReadonlyArray<unknown>): string => rows.map((r) => JSON.stringify(r)).join("\n")

const written = (files: FileStore.MemoryFiles, dir: string) =>
  Array.from(FileStore.contents(files).entries())
    .filter(([k]) => k.startsWith(`${dir}/part-`))
    .flatMap(([, bytes]) => lines(new TextDecoder().decode(bytes)))

/** Decodes, builds and runs a config over in-memory files (plus any declared connections). */
const runConfig = (value: unknown, files: FileStore.MemoryFiles) =>
  Effect.gen(function* () {
    const config = yield* Load.decode(file, value)
    const pipeline = yield* Build.build(config, { file, schema: lookup })
    return yield* Pipeline.run(pipeline).pipe(
      Effect.provide(Layer.merge(FileStore.layerMemory(files), Build.connections(config)))
    )
  })

describe("config shapes that used to crash or vanish", () => {
  it.effect("a value nested thousands deep is a ConfigError naming its JSON path, not a stack overflow", () =>
    Effect.gen(function* () {
      for (const [depth, open, close, at] of [
        [3_000, '{"a":', "}", "$.description.a.a.a"],
        [50_000, "[", "]", "$.description[0][0][0]"]
      ] as const) {
        const value = JSON.parse(`{"name":"t","description":${nested(depth, open, close, "1")}}`) as unknown
        const [issue, ...more] = yield* issuesOf(value)
        assert.lengthOf(more, 0)
        assert.isTrue(issue!.startsWith(at), issue)
        assert.include(issue!, `Nested deeper than ${Load.maxDepth} levels`)
        const direct = yield* Load.decode(file, value).pipe(Effect.flip)
        assert.include(direct.message, `Nested deeper than ${Load.maxDepth} levels`)
      }
    })
  )

  it.effect("__proto__, constructor and prototype keys are reported at their path, never dropped", () =>
    Effect.gen(function* () {
      const value = JSON.parse(`{
        "name": "t",
        "source": { "type": "file", "path": "in", "__proto__": { "path": "elsewhere" } },
        "transforms": [{ "type": "derive", "fields": { "constructor": "1", "ok": "2" } }],
        "connections": { "prototype": { "type": "s3" } },
        "sink": { "type": "file", "path": "out", "format": { "type": "jsonl" } }
      }`) as unknown
      const issues = yield* issuesOf(value)
      assert.deepStrictEqual(
        issues.map((i) => i.slice(0, i.indexOf(":"))),
        ["$.source.__proto__", "$.transforms[0].fields.constructor", "$.connections.prototype"]
      )
      for (const issue of issues) assert.include(issue, "not allowed anywhere in a config")
    })
  )
})

describe("config values that harm data are rejected with their JSON path and bound", () => {
  const window = { type: "window", kind: "tumbling", size: "1 hour", time: "t" }
  const pg = { type: "postgres", url: "postgres://h/db" }
  const kafkaSink = { type: "kafka", brokers: ["b:9092"], topic: "t", value: { type: "json" } }
  const cases: ReadonlyArray<readonly [string, Record<string, unknown>, string]> = [
    [
      "a negative allowed lateness",
      { transforms: [{ ...window, allowed_lateness: "-1 hours" }] },
      '$.transforms[0].allowed_lateness: Expected a duration that is not negative, like "5 seconds", got "-1 hours"'
    ],
    [
      "an infinite retry delay",
      { retry: { initial_delay: "Infinity" } },
      '$.retry.initial_delay: Expected a duration like "5 seconds", "500 millis" or "2 minutes", got "Infinity"'
    ],
    [
      "a misspelt unit",
      { retry: { max_delay: "5 sekonds" } },
      '$.retry.max_delay: Expected a duration like "5 seconds", "500 millis" or "2 minutes", got "5 sekonds"'
    ],
    [
      "an absurd retry delay",
      { retry: { initial_delay: "30 days" } },
      '$.retry.initial_delay: Expected a duration of at most 1 hour, got "30 days"'
    ],
    [
      "10^9 retry attempts",
      { retry: { attempts: 1e9 } },
      "$.retry.attempts: Expected at most 100 (a failing run retried more often only fails later), got 1000000000"
    ],
    [
      "a batch of 10^12 records",
      { source: { ...base.source, batch_size: 1e12 } },
      "$.source.batch_size: Expected at most 1000000 (a batch is held in memory), got 1000000000000"
    ],
    [
      "10^9 partitions",
      {
        connections: { db: pg },
        source: { type: "postgres", connection: "db", table: "t", partition: { column: "id", partitions: 1e9 } }
      },
      "$.source.partition.partitions: Expected at most 10000 (every slice is a query of its own), got 1000000000"
    ],
    [
      "a pool of 10^9 connections",
      { connections: { db: { ...pg, pool_size: 1e9 } } },
      "$.connections.db.pool_size: Expected at most 1000 (each is a server connection), got 1000000000"
    ],
    [
      "a produce request of 10^12 bytes",
      { sink: { ...kafkaSink, max_request_bytes: 1e12 } },
      "$.sink.max_request_bytes: Expected at most 268435456 (a request is held in memory), got 1000000000000"
    ],
    [
      "a joined side of 10^12 rows",
      { transforms: [{ type: "join", source: base.source, on: "id", max_rows: 1e12 }] },
      "$.transforms[0].max_rows: Expected at most 100000000 (the joined side is held in memory), got 1000000000000"
    ],
    [
      "a commit interval of zero",
      { mode: "streaming", streaming: { commit_interval: "0 seconds" } },
      '$.streaming.commit_interval: Expected a duration above zero, got "0 seconds"'
    ]
  ]
  for (const [what, patch, expected] of cases)
    it.effect(`rejects ${what}`, () =>
      Effect.gen(function* () {
        assert.include(yield* issuesOf({ ...base, ...patch }), expected)
      })
    )

  it.effect(
    "refuses sink directories an overwrite would wipe: the root, the working and home directories, their parents",
    () =>
      Effect.gen(function* () {
        const cwd = process.cwd()
        for (const path of [
          "/",
          ".",
          "./",
          "..",
          "../..",
          cwd,
          nodePath.dirname(cwd),
          os.homedir(),
          nodePath.dirname(os.homedir())
        ]) {
          for (const at of ["sink", "dead_letters"] as const) {
            const issues = yield* issuesOf({ ...base, [at]: { ...base.sink, path, mode: "overwrite" } })
            assert.lengthOf(issues, 1, `${at} ${path}`)
            assert.match(
              issues[0]!,
              new RegExp(`^\\$\\.${at}\\.path: This is (the file system root|the working directory|a parent|the home)`)
            )
          }
        }
        for (const path of ["", "/", "//", "a/../b", "./x"]) {
          const s3 = { type: "s3", bucket: "b", path, format: { type: "jsonl" }, mode: "overwrite" }
          const issues = yield* issuesOf({ ...base, sink: s3 })
          assert.match(issues.join("\n"), /^\$\.sink\.path: Expected a prefix of its own/m, JSON.stringify(path))
        }
        const fine = yield* Load.decode(file, {
          ...base,
          sink: { ...base.sink, path: "out/orders", mode: "overwrite" },
          dead_letters: { type: "s3", bucket: "b", path: "dead/letters", format: { type: "jsonl" } }
        })
        assert.strictEqual(fine.sink.type, "file")
      })
  )
})

describe("the generated JSON Schema follows the loader", () => {
  const checkedIn = JSON.parse(
    fs.readFileSync(nodePath.join(root, "schemas/pipeline-config.schema.json"), "utf8")
  ) as JsonSchemaDocument.JsonSchema
  const validator = () => {
    const schema = SchemaRepresentation.fromJsonSchemaDocument(JsonSchemaDocument.fromSchemaDraft2020_12(checkedIn), {
      patterns: "apply"
    }) as Schema.Codec<unknown, unknown>
    return (value: unknown) =>
      Schema.decodeUnknownExit(schema)(value, { onExcessProperty: "error", errors: "all" })._tag === "Success"
  }

  it("every example config validates against it, $env and $secret references included", () => {
    const valid = validator()
    const examples = fs.readdirSync(nodePath.join(root, "examples")).filter((f) => f.endsWith(".json"))
    assert.isAtLeast(examples.length, 6)
    for (const example of examples) {
      const text = fs.readFileSync(nodePath.join(root, "examples", example), "utf8")
      assert.isTrue(valid(JSON.parse(text)), example)
    }
  })

  it.effect("accepts and rejects what the loader accepts and rejects", () =>
    Effect.gen(function* () {
      const valid = validator()
      const env = { ETL_PATH: "in", ETL_NUMBER: "100", ETL_MODE: "overwrite" }
      const configs: ReadonlyArray<readonly [string, unknown, boolean]> = [
        ["a minimal config", base, true],
        ["$env in a string field", { ...base, source: { ...base.source, path: { $env: "ETL_PATH" } } }, true],
        [
          "$env with a default in an enum field",
          { ...base, sink: { ...base.sink, mode: { $env: "ETL_MODE", default: "append" } } },
          true
        ],
        ["$env in a number field", { ...base, source: { ...base.source, batch_size: { $env: "ETL_NUMBER" } } }, false],
        ["$env with an unknown key", { ...base, source: { ...base.source, path: { $env: "ETL_PATH", x: 1 } } }, false],
        ["a misspelt duration unit", { ...base, retry: { initial_delay: "5 sekonds" } }, false],
        ["a negative duration", { ...base, retry: { initial_delay: "-1 hours" } }, false],
        ["an upsert into files", { ...base, sink: { ...base.sink, mode: "upsert" } }, false],
        [
          "a compression Kafka knows",
          {
            ...base,
            sink: { type: "kafka", brokers: ["b"], topic: "t", value: { type: "json" }, compression: "zstd" }
          },
          true
        ],
        [
          "a compression Kafka lacks",
          {
            ...base,
            sink: { type: "kafka", brokers: ["b"], topic: "t", value: { type: "json" }, compression: "brotli" }
          },
          false
        ],
        [
          "an instance id from $env",
          {
            ...base,
            source: {
              type: "kafka",
              brokers: ["b"],
              topics: ["t"],
              group_id: "g",
              value: { type: "json" },
              instance_id: { $env: "ETL_PATH" },
              session_timeout: "45 seconds"
            }
          },
          true
        ],
        [
          "an instance id with a space",
          {
            ...base,
            source: {
              type: "kafka",
              brokers: ["b"],
              topics: ["t"],
              group_id: "g",
              value: { type: "json" },
              instance_id: "worker 1"
            }
          },
          false
        ],
        [
          "a schema registry connection, its password from $env, named by a Kafka sink's and source's payloads",
          {
            ...base,
            connections: {
              reg: {
                type: "schema_registry",
                url: "https://registry.internal/apis/ccompat/v7",
                username: "etl",
                password: { $env: "ETL_PATH" },
                ca: "certs/ca.pem",
                request_timeout: "10 seconds"
              }
            },
            source: {
              type: "kafka",
              brokers: ["b"],
              topics: ["t"],
              group_id: "g",
              envelope: true,
              key: { type: "confluent", registry: "reg", schema: "order_key" },
              value: { type: "confluent", registry: "reg", schema: "order" }
            },
            sink: {
              type: "kafka",
              brokers: ["b"],
              topic: "t2",
              value: {
                type: "confluent",
                registry: "reg",
                schema: "order",
                subject_strategy: "topic_record",
                auto_register: false
              }
            }
          },
          true
        ],
        [
          "a schema registry with an ftp URL",
          { ...base, connections: { reg: { type: "schema_registry", url: "ftp://registry" } } },
          false
        ],
        [
          "a schema registry with a misspelt key",
          { ...base, connections: { reg: { type: "schema_registry", url: "http://r", pasword: "x" } } },
          false
        ],
        [
          "a subject strategy the registry has no name for",
          {
            ...base,
            sink: {
              type: "kafka",
              brokers: ["b"],
              topic: "t",
              value: { type: "confluent", registry: "reg", schema: "s", subject_strategy: "topic-record" }
            }
          },
          false
        ],
        [
          "a confluent payload with local schema ids (no registry)",
          {
            ...base,
            sink: { type: "kafka", brokers: ["b"], topic: "t", value: { type: "confluent", schemas: { "1": "s" } } }
          },
          true
        ],
        ["10^9 attempts", { ...base, retry: { attempts: 1e9 } }, false],
        ["a connection name with a space", { ...base, connections: { "my db": { type: "s3" } } }, false],
        ["an unknown key", { ...base, sinks: {} }, false]
      ]
      for (const [what, config, expected] of configs) {
        const loader = yield* Effect.result(
          Load.resolveReferences(file, config, { env }).pipe(
            Effect.flatMap((r) => Load.decode(file, r.value, r.sensitive))
          )
        )
        assert.strictEqual(loader._tag === "Success", expected, `loader: ${what}`)
        assert.strictEqual(valid(config), expected, `JSON Schema: ${what}`)
      }
    })
  )
})

describe("vault key parameters", () => {
  const tamper = (costs: Record<string, unknown>) =>
    Effect.gen(function* () {
      const options: Vault.VaultOptions = {
        file: nodePath.join(fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-safety-vault-")), "vault.json"),
        passphrase: Redacted.make("correct horse")
      }
      yield* Vault.set(options, "db", Redacted.make("hunter2"))
      const stored = JSON.parse(fs.readFileSync(options.file, "utf8")) as { kdf: Record<string, unknown> }
      fs.writeFileSync(options.file, JSON.stringify({ ...stored, kdf: { ...stored.kdf, ...costs } }))
      return yield* Vault.get(options, "db").pipe(Effect.flip)
    })

  it.effect("a file naming scrypt costs above the vault's own is refused before a key is derived", () =>
    Effect.gen(function* () {
      for (const costs of [{ N: 1 << 20 }, { r: 64 }, { p: 16 }, { N: 1 << 30, r: 1 << 20 }]) {
        const error = yield* tamper(costs)
        assert.strictEqual(error.reason, "Corrupt")
        assert.include(error.message, "are above the ones this vault writes (at most N=32768, r=8, p=1)")
        assert.notInclude(error.message, "hunter2")
      }
      const nonsense = yield* tamper({ N: "many" })
      assert.include(nonsense.message, "are not positive integers")
    })
  )
})

describe("sources: joined schemas and connections, typed CSV, unknown fields", () => {
  it.effect("a joined CSV source names a schema, so its numeric keys match the main source's", () =>
    Effect.gen(function* () {
      const files = FileStore.memory({
        "in/orders.jsonl": lines2([
          { order: "a", userId: 1 },
          { order: "b", userId: 2 },
          { order: "c", userId: 9 }
        ]),
        "dim/users.csv": "id,name\n1,Ada\n2,Grace\n"
      })
      const report = yield* runConfig(
        {
          ...base,
          source: { type: "file", path: "in" },
          transforms: [
            {
              type: "join",
              source: { type: "file", path: "dim/users.csv", format: { type: "csv" }, schema: "user" },
              on: { userId: "id" }
            }
          ]
        },
        files
      )
      assert.strictEqual(report.records.written, 2)
      assert.deepStrictEqual(
        written(files, "out").map((r) => [r.order, r.name]),
        [
          ["a", "Ada"],
          ["b", "Grace"]
        ]
      )
    })
  )

  it.effect("the typed API reads a CSV file with an effect/Schema into numbers and booleans", () =>
    Effect.gen(function* () {
      const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-safety-csv-"))
      const rows = Array.from({ length: 5000 }, (_, i) => `${i},${(i * 1.25).toFixed(2)},${i % 2 === 0}`)
      fs.writeFileSync(nodePath.join(dir, "in.csv"), `id,amount,settled\n${rows.join("\n")}\n`)
      const Row = Schema.Struct({ id: Schema.Int, amount: Schema.Finite, settled: Schema.Boolean })
      const report = yield* Pipeline.from(
        File.source({
          path: nodePath.join(dir, "in.csv"),
          format: { type: "csv" },
          schema: RecordSchema.fromSchema(Row, "row")
        })
      ).pipe(
        Pipeline.to(File.sink({ path: nodePath.join(dir, "out"), format: { type: "jsonl" } })),
        Pipeline.run,
        Effect.provide(NodeFileStore.layer)
      )
      assert.deepStrictEqual([report.records.written, report.records.rejected], [5000, 0])
      const out = fs
        .readdirSync(nodePath.join(dir, "out"))
        .filter((f) => f.endsWith(".jsonl"))
        .flatMap((f) => lines(fs.readFileSync(nodePath.join(dir, "out", f), "utf8")))
      assert.deepStrictEqual(
        out.find((r) => r.id === 4),
        { id: 4, amount: 5, settled: true }
      )
    })
  )

  it.effect('"unknown_fields" drops (default), keeps or rejects the fields a source schema does not name', () =>
    Effect.gen(function* () {
      const input = lines2([
        { id: 1, name: "Ada", extra: "x" },
        { id: 2, name: "Grace" }
      ])
      const run = (policy: string | undefined) =>
        Effect.gen(function* () {
          const files = FileStore.memory({ "in/u.jsonl": input })
          const source = {
            type: "file",
            path: "in",
            schema: "user",
            ...(policy === undefined ? {} : { unknown_fields: policy })
          }
          const report = yield* runConfig(
            { ...base, source, dead_letters: { type: "file", path: "dead", format: { type: "jsonl" } } },
            files
          )
          return { report, out: written(files, "out"), dead: written(files, "dead") }
        })
      const dropped = yield* run(undefined)
      assert.deepStrictEqual(dropped.out, [
        { id: 1, name: "Ada" },
        { id: 2, name: "Grace" }
      ])
      assert.deepStrictEqual((yield* run("drop")).out, dropped.out)
      assert.deepStrictEqual((yield* run("keep")).out, [
        { id: 1, name: "Ada", extra: "x" },
        { id: 2, name: "Grace" }
      ])
      const rejected = yield* run("reject")
      assert.deepStrictEqual(rejected.out, [{ id: 2, name: "Grace" }])
      assert.strictEqual(rejected.report.records.rejected, 1)
      assert.include(String(rejected.dead[0]?.message), 'unknown field "extra": schema user has id, name')
      const noSchema = yield* Load.decode(file, { ...base, source: { ...base.source, unknown_fields: "keep" } }).pipe(
        Effect.flatMap((config) => Build.build(config, { file, schema: lookup })),
        Effect.flip
      )
      assert.include(
        noSchema.message,
        '$.source.unknown_fields: "unknown_fields" applies to records checked against a "schema"'
      )
    })
  )
})

layer(PgTest.layer)("a joined source on a declared database connection", (it) => {
  it.effect("reads the joined table through the connection the config declares, with its schema", () =>
    Effect.gen(function* () {
      const db = yield* PgTest
      yield* db.sql(`CREATE TABLE users (id integer PRIMARY KEY, name text NOT NULL)`)
      yield* db.sql(`INSERT INTO users VALUES (1, 'Ada'), (2, 'Grace')`)
      const files = FileStore.memory({
        "in/orders.jsonl": lines2([
          { order: "a", userId: 2 },
          { order: "b", userId: 3 }
        ])
      })
      const report = yield* runConfig(
        {
          ...base,
          connections: { db: { type: "postgres", url: pgUrl, schema: db.schema } },
          transforms: [
            {
              type: "join",
              kind: "left",
              source: { type: "postgres", connection: "db", table: "users", schema: "user" },
              on: { userId: "id" }
            }
          ]
        },
        files
      )
      assert.strictEqual(report.records.written, 2)
      assert.deepStrictEqual(
        written(files, "out").map((r) => [r.order, r.name ?? null]),
        [
          ["a", "Grace"],
          ["b", null]
        ]
      )
    })
  )
})
