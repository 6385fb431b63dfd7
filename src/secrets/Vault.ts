/**
 * The credential vault: named secrets in a local file, encrypted with AES-256-GCM under a key derived from a
 * passphrase by scrypt. Configs refer to them as `{"$secret": "name"}`; values are `Redacted` in memory and never
 * printed. Tampering with the file (or a wrong passphrase) is detected by GCM's authentication tag.
 *
 * The file is JSON: `{ version, kdf: { name: "scrypt", salt, N, r, p }, iv, tag, data }` (base64 fields); the
 * plaintext is a JSON object of name → value. Every write uses a fresh salt and IV and replaces the file atomically
 * (write to a temporary file with mode 0600, then rename).
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as nodePath from "node:path"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"

/** Why a vault operation failed. Messages never contain a secret value or the passphrase. */
export class VaultError extends Data.TaggedError("VaultError")<{
  readonly reason: "NoPassphrase" | "NotFound" | "Corrupt" | "Io" | "InvalidName"
  readonly message: string
}> {
  /** Never retryable: the same file and passphrase fail the same way. */
  get retryable(): boolean {
    return false
  }
}

/** Where a vault lives and how it is unlocked. */
export interface VaultOptions {
  readonly file: string
  readonly passphrase: Redacted.Redacted<string> | undefined
}

/** The default vault file: `$ETL_VAULT_FILE`, else `~/.config/effect-etl/vault.json`. */
export const defaultFile = (env: Readonly<Record<string, string | undefined>> = process.env): string =>
  env.ETL_VAULT_FILE ?? nodePath.join(os.homedir(), ".config", "effect-etl", "vault.json")

/** Options from the environment: `ETL_VAULT_FILE` and `ETL_VAULT_PASSPHRASE`. */
export const fromEnv = (env: Readonly<Record<string, string | undefined>> = process.env): VaultOptions => ({
  file: defaultFile(env),
  passphrase: env.ETL_VAULT_PASSPHRASE === undefined ? undefined : Redacted.make(env.ETL_VAULT_PASSPHRASE)
})

const KDF = { N: 1 << 15, r: 8, p: 1 } as const

/**
 * Why a vault file's key parameters cannot be used, or `undefined`. Its scrypt costs may not exceed the ones `write`
 * uses (N = 2^15, r = 8, p = 1: 32 MiB and about 0.1 s): a file naming higher costs was not written by this vault, and
 * honouring them would let whoever can edit it make every run allocate gigabytes or spin for minutes before the
 * authentication tag is even checked. (Lower costs only derive a key that fails that check.) Salt, IV and tag must
 * have their sizes.
 */
const kdfProblem = (parsed: Partial<VaultFile>): string | undefined => {
  const kdf = parsed.kdf
  if (typeof kdf !== "object" || kdf === null || kdf.name !== "scrypt") return "its key derivation is not scrypt"
  const costs = { N: kdf.N, r: kdf.r, p: kdf.p }
  const show = (v: unknown) => String(v).slice(0, 24)
  const shown = `N=${show(costs.N)}, r=${show(costs.r)}, p=${show(costs.p)}`
  if ((Object.keys(KDF) as Array<keyof typeof KDF>).some((k) => !Number.isSafeInteger(costs[k]) || costs[k] < 1))
    return `its scrypt costs (${shown}) are not positive integers`
  if ((Object.keys(KDF) as Array<keyof typeof KDF>).some((k) => costs[k] > KDF[k]))
    return `its scrypt costs (${shown}) are above the ones this vault writes (at most N=${KDF.N}, r=${KDF.r}, p=${KDF.p})`
  const sizes: ReadonlyArray<readonly [unknown, number, string]> = [
    [kdf.salt, 16, "salt"],
    [parsed.iv, 12, "IV"],
    [parsed.tag, 16, "authentication tag"]
  ]
  for (const [value, bytes, what] of sizes)
    if (typeof value !== "string" || Buffer.from(value, "base64").length !== bytes) return `its ${what} is malformed`
  if (typeof parsed.data !== "string") return "it has no data"
  return undefined
}
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/

interface VaultFile {
  readonly version: 1
  readonly kdf: {
    readonly name: "scrypt"
    readonly salt: string
    readonly N: number
    readonly r: number
    readonly p: number
  }
  readonly iv: string
  readonly tag: string
  readonly data: string
}

const deriveKey = (passphrase: Redacted.Redacted<string>, salt: Buffer, kdf: { N: number; r: number; p: number }) =>
  Effect.tryPromise({
    try: () =>
      new Promise<Buffer>((resolve, reject) =>
        crypto.scrypt(Redacted.value(passphrase), salt, 32, { ...kdf, maxmem: 256 * kdf.N * kdf.r }, (error, key) =>
          error === null ? resolve(key) : reject(error)
        )
      ),
    catch: () => new VaultError({ reason: "Corrupt", message: "Cannot derive the vault key (bad key parameters)" })
  })

const requirePassphrase = (options: VaultOptions) =>
  options.passphrase === undefined
    ? Effect.fail(
        new VaultError({
          reason: "NoPassphrase",
          message: "The vault is locked: set ETL_VAULT_PASSPHRASE to its passphrase"
        })
      )
    : Effect.succeed(options.passphrase)

const corrupt = (file: string) =>
  new VaultError({
    reason: "Corrupt",
    message: `Cannot open the vault ${file}: the passphrase is wrong or the file was modified`
  })

/** Reads and decrypts the vault; a missing file is an empty vault. */
export const read = (options: VaultOptions): Effect.Effect<ReadonlyMap<string, string>, VaultError> =>
  Effect.gen(function* () {
    const text = yield* Effect.tryPromise({
      try: () =>
        fs
          .readFile(options.file, "utf8")
          .catch((e: { code?: string }) => (e.code === "ENOENT" ? undefined : Promise.reject(e))),
      catch: (e) =>
        new VaultError({ reason: "Io", message: `Cannot read the vault ${options.file}: ${(e as Error).message}` })
    })
    if (text === undefined) return new Map<string, string>()
    const passphrase = yield* requirePassphrase(options)
    const parsed = yield* Effect.try({
      try: () => JSON.parse(text) as VaultFile,
      catch: () => corrupt(options.file)
    })
    if (typeof parsed !== "object" || parsed === null || parsed.version !== 1)
      return yield* Effect.fail(corrupt(options.file))
    const problem = kdfProblem(parsed)
    if (problem !== undefined)
      return yield* Effect.fail(
        new VaultError({
          reason: "Corrupt",
          message: `Cannot open the vault ${options.file}: ${problem}; the file was modified or was not written by effect-etl`
        })
      )
    const key = yield* deriveKey(passphrase, Buffer.from(parsed.kdf.salt, "base64"), parsed.kdf)
    const plain = yield* Effect.try({
      try: () => {
        const decipher = crypto.createDecipheriv("aes-256-gcm", key, Buffer.from(parsed.iv, "base64"))
        decipher.setAuthTag(Buffer.from(parsed.tag, "base64"))
        return Buffer.concat([decipher.update(Buffer.from(parsed.data, "base64")), decipher.final()]).toString("utf8")
      },
      catch: () => corrupt(options.file)
    })
    const entries = yield* Effect.try({
      try: () => JSON.parse(plain) as Record<string, string>,
      catch: () => corrupt(options.file)
    })
    return new Map(Object.entries(entries))
  })

/** Encrypts and writes the whole vault, atomically. */
export const write = (options: VaultOptions, entries: ReadonlyMap<string, string>): Effect.Effect<void, VaultError> =>
  Effect.gen(function* () {
    const passphrase = yield* requirePassphrase(options)
    const salt = crypto.randomBytes(16)
    const iv = crypto.randomBytes(12)
    const key = yield* deriveKey(passphrase, salt, KDF)
    const cipher = crypto.createCipheriv("aes-256-gcm", key, iv)
    const data = Buffer.concat([cipher.update(JSON.stringify(Object.fromEntries(entries)), "utf8"), cipher.final()])
    const file: VaultFile = {
      version: 1,
      kdf: { name: "scrypt", salt: salt.toString("base64"), ...KDF },
      iv: iv.toString("base64"),
      tag: cipher.getAuthTag().toString("base64"),
      data: data.toString("base64")
    }
    const temporary = `${options.file}.${process.pid}.tmp`
    yield* Effect.tryPromise({
      try: async () => {
        await fs.mkdir(nodePath.dirname(options.file), { recursive: true, mode: 0o700 })
        await fs.writeFile(temporary, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 })
        await fs.rename(temporary, options.file)
      },
      catch: (e) =>
        new VaultError({ reason: "Io", message: `Cannot write the vault ${options.file}: ${(e as Error).message}` })
    })
  })

const checkName = (name: string) =>
  NAME.test(name)
    ? Effect.void
    : Effect.fail(
        new VaultError({
          reason: "InvalidName",
          message: `Invalid secret name ${JSON.stringify(name)}: use letters, digits, '.', '_' or '-'`
        })
      )

/** The value of a secret. */
export const get = (options: VaultOptions, name: string): Effect.Effect<Redacted.Redacted<string>, VaultError> =>
  Effect.flatMap(read(options), (entries) => {
    const value = entries.get(name)
    return value === undefined
      ? Effect.fail(
          new VaultError({
            reason: "NotFound",
            message: `No secret named ${JSON.stringify(name)} in the vault ${options.file}${entries.size === 0 ? "" : `; it has: ${Array.from(entries.keys()).sort().join(", ")}`}`
          })
        )
      : Effect.succeed(Redacted.make(value))
  })

/** Stores (or replaces) a secret. */
export const set = (
  options: VaultOptions,
  name: string,
  value: Redacted.Redacted<string>
): Effect.Effect<void, VaultError> =>
  Effect.andThen(
    checkName(name),
    Effect.flatMap(read(options), (entries) => write(options, new Map(entries).set(name, Redacted.value(value))))
  )

/** Removes a secret; `false` when there was none. */
export const remove = (options: VaultOptions, name: string): Effect.Effect<boolean, VaultError> =>
  Effect.flatMap(read(options), (entries) => {
    if (!entries.has(name)) return Effect.succeed(false)
    const next = new Map(entries)
    next.delete(name)
    return Effect.as(write(options, next), true)
  })

/** The names of the secrets (never their values), sorted. */
export const list = (options: VaultOptions): Effect.Effect<ReadonlyArray<string>, VaultError> =>
  Effect.map(read(options), (entries) => Array.from(entries.keys()).sort())
