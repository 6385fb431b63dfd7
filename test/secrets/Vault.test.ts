import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Load from "../../src/config/Load.ts"
import * as Vault from "../../src/secrets/Vault.ts"

const options = (passphrase: string | undefined = "correct horse"): Vault.VaultOptions => ({
  file: nodePath.join(fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-vault-")), "vault.json"),
  passphrase: passphrase === undefined ? undefined : Redacted.make(passphrase)
})

describe("Vault", () => {
  it.effect("stores, lists, reads and removes secrets; the file holds no plaintext", () =>
    Effect.gen(function* () {
      const vault = options()
      assert.deepStrictEqual(yield* Vault.list(vault), [])
      yield* Vault.set(vault, "pg-password", Redacted.make("s3cr3t-value"))
      yield* Vault.set(vault, "api.token", Redacted.make("tok"))
      assert.deepStrictEqual(yield* Vault.list(vault), ["api.token", "pg-password"])
      assert.strictEqual(Redacted.value(yield* Vault.get(vault, "pg-password")), "s3cr3t-value")
      const text = fs.readFileSync(vault.file, "utf8")
      assert.notInclude(text, "s3cr3t-value")
      assert.notInclude(text, "pg-password")
      assert.strictEqual(fs.statSync(vault.file).mode & 0o777, 0o600)
      assert.isTrue(yield* Vault.remove(vault, "api.token"))
      assert.isFalse(yield* Vault.remove(vault, "api.token"))
      const missing = yield* Vault.get(vault, "nope").pipe(Effect.flip)
      assert.include(missing.message, 'No secret named "nope"')
      assert.include(missing.message, "it has: pg-password")
    })
  )

  it.effect("detects a wrong passphrase and a tampered file, without revealing anything", () =>
    Effect.gen(function* () {
      const vault = options()
      yield* Vault.set(vault, "k", Redacted.make("value-1"))
      const wrong = yield* Vault.get({ ...vault, passphrase: Redacted.make("wrong") }, "k").pipe(Effect.flip)
      assert.strictEqual(wrong.reason, "Corrupt")
      assert.include(wrong.message, "the passphrase is wrong or the file was modified")
      const file = JSON.parse(fs.readFileSync(vault.file, "utf8")) as { data: string }
      const data = Buffer.from(file.data, "base64")
      data[0] = data[0]! ^ 1
      fs.writeFileSync(vault.file, JSON.stringify({ ...file, data: data.toString("base64") }))
      const tampered = yield* Vault.get(vault, "k").pipe(Effect.flip)
      assert.strictEqual(tampered.reason, "Corrupt")
      assert.notInclude(tampered.message, "value-1")
      const locked = yield* Vault.set({ ...vault, passphrase: undefined }, "k", Redacted.make("x")).pipe(Effect.flip)
      assert.strictEqual(locked.reason, "NoPassphrase")
      const badName = yield* Vault.set(options(), "no spaces", Redacted.make("x")).pipe(Effect.flip)
      assert.strictEqual(badName.reason, "InvalidName")
    })
  )

  it.effect("configs take secrets by name, and errors never show a value from $env or the vault", () =>
    Effect.gen(function* () {
      const vault = options()
      yield* Vault.set(vault, "db", Redacted.make("hunter2"))
      const resolved = yield* Load.resolveReferences(
        "p.json",
        { a: { $secret: "db" }, b: [{ $env: "X" }] },
        {
          env: { X: "from-env" },
          vault
        }
      )
      assert.deepStrictEqual(resolved.value, { a: "hunter2", b: ["from-env"] })
      assert.deepStrictEqual(Array.from(resolved.sensitive).sort(), ["$.a", "$.b[0]"])

      const unknown = yield* Load.resolveReferences("p.json", { a: { $secret: "nope" } }, { vault }).pipe(Effect.flip)
      assert.strictEqual(unknown.message, 'Invalid config p.json:\n  $.a: No secret named "nope" in the vault')

      const config = {
        name: "t",
        source: { type: "file", path: "in", batch_size: { $secret: "db" } },
        sink: { type: "file", path: "out", format: { type: "jsonl" } }
      }
      const { value, sensitive } = yield* Load.resolveReferences("p.json", config, { vault })
      const error = yield* Load.decode("p.json", value, sensitive).pipe(Effect.flip)
      assert.include(error.message, "$.source.batch_size: Expected number, got a value from $env/$secret (not shown)")
      assert.notInclude(error.message, "hunter2")
    })
  )
})
