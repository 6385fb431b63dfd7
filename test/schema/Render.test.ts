/**
 * One record schema, many forms (`schema show --as`): the JSON Schema accepts every JSON record the pipeline's codec
 * accepts (and rejects what it must), and the TypeScript types are the typed contracts' record types, both ways.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Ajv2020 } from "ajv/dist/2020.js"
import addFormats from "ajv-formats"
import { Effect, Schema } from "effect"
import * as fc from "fast-check"
import * as AvroBridge from "../../src/schema/AvroBridge.ts"
import * as AvroSchema from "../../src/schema/AvroSchema.ts"
import * as Render from "../../src/schema/Render.ts"
import { contracts } from "./support/ContractCases.ts"

const root = nodePath.resolve(import.meta.dirname, "../..")

const load = (file: string): AvroSchema.Schema =>
  Effect.runSync(AvroSchema.parse(fs.readFileSync(nodePath.join(root, `schemas/${file}.avsc`), "utf8"), { file }))

const ajv = new Ajv2020({ strict: false, allErrors: true })
// ajv-formats is a CommonJS module whose default export is the plugin.
;(addFormats as unknown as (a: Ajv2020) => void)(ajv)

describe("schema forms", () => {
  for (const contract of contracts)
    describe(contract.file, () => {
      const avro = load(contract.file)
      const codec = AvroBridge.toSchema(avro)
      const encode = Schema.encodeSync(codec)
      const validate = AvroBridge.makeValidator(codec)
      const check = ajv.compile(Render.toJsonSchema(avro))

      it("JSON Schema: accepts the JSON of every valid record, and every input the pipeline accepts", () => {
        assert.isTrue(check(contract.valid), ajv.errorsText(check.errors))
        fc.assert(
          fc.property(contract.arbitrary, (record) => {
            const json = JSON.parse(JSON.stringify(encode(record)))
            assert.isTrue(check(json), `${ajv.errorsText(check.errors)}: ${JSON.stringify(json)}`)
          }),
          { numRuns: 200 }
        )
        // A field changed to any JSON value: when the pipeline's validator takes it, so does the JSON Schema.
        fc.assert(
          fc.property(fc.constantFrom(...Object.keys(contract.record)), fc.jsonValue(), (field, value) => {
            const input = { ...contract.valid, [field]: value }
            if (validate(input).ok)
              assert.isTrue(check(input), `${ajv.errorsText(check.errors)}: ${JSON.stringify(input)}`)
          }),
          { numRuns: 500 }
        )
      })

      it("JSON Schema: rejects a record without a required field, or with a field of the wrong type", () => {
        const required = (avro as AvroSchema.RecordSchema).fields.filter((f) => !("default" in f))
        assert.isAbove(required.length, 0)
        for (const field of required) {
          const { [field.name]: _, ...rest } = contract.valid
          assert.isFalse(check(rest), `without ${field.name}`)
        }
        assert.isFalse(check({ ...contract.valid, [required[0]!.name]: { nested: true } }))
      })
    })

  it("TypeScript: the declarations are the typed contracts' record types, both ways", () => {
    // Written inside the project, so that `effect/BigDecimal` resolves; checked by the project's own compiler.
    fs.mkdirSync(nodePath.join(root, ".tmp"), { recursive: true })
    const dir = fs.mkdtempSync(nodePath.join(root, ".tmp", "render-"))
    try {
      const checks: Array<string> = []
      for (const contract of contracts) {
        const file = `${contract.file}.ts`
        fs.writeFileSync(nodePath.join(dir, file), Render.toTypeScript(load(contract.file)))
        const alias = contract.file.replaceAll("-", "_")
        checks.push(`import type * as ${alias} from "./${contract.file}.ts"`)
        checks.push(
          `export const ${alias}_to = (r: Contracts.${contract.name}): ${alias}.${contract.name} => r`,
          `export const ${alias}_from = (r: ${alias}.${contract.name}): Contracts.${contract.name} => r`
        )
      }
      const contractsPath = nodePath.relative(dir, nodePath.join(root, "src/schema/Contracts.ts"))
      fs.writeFileSync(
        nodePath.join(dir, "check.ts"),
        `import type * as Contracts from "${contractsPath.split(nodePath.sep).join("/")}"\n${checks.join("\n")}\n`
      )
      const tsc = spawnSync(
        process.execPath,
        [
          nodePath.join(root, "node_modules/typescript/bin/tsc"),
          "--noEmit",
          "--strict",
          "--exactOptionalPropertyTypes",
          "--target",
          "es2022",
          "--lib",
          "es2024",
          "--module",
          "nodenext",
          "--allowImportingTsExtensions",
          "--skipLibCheck",
          "--ignoreConfig",
          "--types",
          "node",
          nodePath.join(dir, "check.ts")
        ],
        { cwd: root, encoding: "utf8" }
      )
      assert.strictEqual(tsc.status, 0, `${tsc.stdout}${tsc.stderr}`)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("TypeScript: nested records, arrays, maps, enums, fixed and nullable unions", () => {
    const avro = {
      type: "record",
      name: "Outer",
      namespace: "x",
      fields: [
        { name: "inner", type: { type: "record", name: "Inner", fields: [{ name: "n", type: "int" }] } },
        { name: "again", type: "Inner" },
        { name: "tags", type: { type: "array", items: "string" } },
        { name: "scores", type: { type: "map", values: ["null", "double"] } },
        { name: "kind", type: { type: "enum", name: "Kind", symbols: ["a", "b"] } },
        { name: "hash", type: { type: "fixed", name: "Hash", size: 4 } },
        { name: "odd-name", type: ["null", "long"], default: null }
      ]
    } as unknown as AvroSchema.Schema
    assert.strictEqual(
      Render.toTypeScript(avro),
      [
        "export interface Outer {",
        "  readonly inner: Inner",
        "  readonly again: Inner",
        "  readonly tags: ReadonlyArray<string>",
        "  readonly scores: Readonly<Record<string, number | null>>",
        "  readonly kind: Kind",
        "  readonly hash: Uint8Array",
        '  readonly "odd-name": number | null',
        "}",
        "",
        "export interface Inner {",
        "  readonly n: number",
        "}",
        "",
        'export type Kind = "a" | "b"',
        ""
      ].join("\n")
    )
    const json = Render.toJsonSchema(avro)
    const check = ajv.compile(json)
    const valid = { inner: { n: 1 }, again: { n: 2 }, tags: [], scores: { x: null }, kind: "a", hash: "AAAAAA==" }
    assert.isTrue(check(valid), ajv.errorsText(check.errors))
    assert.isFalse(check({ ...valid, kind: "c" }))
    assert.isFalse(check({ ...valid, inner: { n: 2 ** 31 } }))
    assert.isTrue(check({ ...valid, "odd-name": 5 }))
  })
})
