/**
 * A real schema registry with the Confluent Schema Registry REST API, for the schema-registry client tests.
 *
 * It is Apicurio Registry 2.4.2 with in-memory storage, serving the Confluent-compatible API under
 * `/apis/ccompat/v7`. Apicurio publishes no runnable jar on Maven Central, so `start` first builds one with Maven
 * from `servers/registry` (a Quarkus build of the published application jar) into the cache directory, once per
 * version of that project; then it runs it on a free port of 127.0.0.1 and waits until the API answers. With
 * `ETL_TEST_SCHEMA_REGISTRY_URL` set (the base URL of a Confluent-compatible API) it starts nothing and returns that.
 * Tests isolate their data by using subjects with a random suffix. The vitest global setup starts one registry for
 * the run when it includes tests that need it; tests take it with `shared()`.
 *
 * This is test infrastructure at the process boundary, so it is plain promise code.
 */
import { execFile } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, inject } from "vitest"
import { cacheRoot, freePort, startJava, tail, tempDir } from "./servers/JavaServer.ts"

declare module "vitest" {
  export interface ProvidedContext {
    /** The base URL of the registry the global setup started ("" when it started none). */
    schemaRegistryUrl: string
  }
}

const run = promisify(execFile)

const projectDir = nodePath.join(import.meta.dirname, "servers", "registry")

/** The files of the Maven project that make the build: a change to any of them builds anew. */
const projectFiles = (dir: string): ReadonlyArray<string> =>
  fs
    .readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f !== "target" && !f.startsWith(`target${nodePath.sep}`))
    .filter((f) => fs.statSync(nodePath.join(dir, f)).isFile())
    .sort()

const projectHash = (): string => {
  const hash = crypto.createHash("sha256")
  for (const file of projectFiles(projectDir)) {
    hash.update(file)
    hash.update(fs.readFileSync(nodePath.join(projectDir, file)))
  }
  return hash.digest("hex").slice(0, 12)
}

/**
 * Builds the registry into `<cache>/apicurio-registry-2.4.2-<hash>/quarkus-app` unless a previous run did, and
 * returns the path of its `quarkus-run.jar`. The build runs in a directory of its own and its result is moved into
 * place in one rename, so concurrent or interrupted runs never see half a build.
 */
export const ensureBuilt = async (): Promise<string> => {
  const home = nodePath.join(cacheRoot(), `apicurio-registry-2.4.2-${projectHash()}`)
  const app = nodePath.join(home, "quarkus-app")
  const jar = nodePath.join(app, "quarkus-run.jar")
  if (fs.existsSync(jar)) return jar
  fs.mkdirSync(home, { recursive: true })
  const work = fs.mkdtempSync(nodePath.join(home, "build-"))
  for (const file of projectFiles(projectDir)) {
    fs.mkdirSync(nodePath.join(work, nodePath.dirname(file)), { recursive: true })
    fs.copyFileSync(nodePath.join(projectDir, file), nodePath.join(work, file))
  }
  try {
    await run("mvn", ["-q", "-B", "package", "-DskipTests", "-Dquarkus.package.type=fast-jar"], {
      cwd: work,
      maxBuffer: 64 * 1024 * 1024
    })
  } catch (cause) {
    const e = cause as { readonly stdout?: string; readonly stderr?: string; readonly message?: string }
    throw new Error(
      `Cannot build the schema registry test server with Maven (needs Java 17+, Maven and Maven Central): ${e.message ?? ""}\n${e.stdout ?? ""}${e.stderr ?? ""}`
    )
  }
  try {
    fs.renameSync(nodePath.join(work, "target", "quarkus-app"), app)
  } catch (cause) {
    // Another run finished the same build first: use its result.
    if (!fs.existsSync(jar)) throw cause
  }
  fs.rmSync(work, { recursive: true, force: true })
  return jar
}

/** A running registry: the base URL of its Confluent-compatible API, and how to stop it. */
export interface Started {
  /** E.g. `http://127.0.0.1:40123/apis/ccompat/v7` (no trailing slash). */
  readonly url: string
  readonly stop: () => Promise<void>
}

const answersOk = async (url: string): Promise<boolean> => {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5_000) })
    await response.arrayBuffer()
    return response.ok
  } catch {
    return false
  }
}

/** Builds (once) and starts the registry, or returns the one of `ETL_TEST_SCHEMA_REGISTRY_URL`. */
export const start = async (): Promise<Started> => {
  const external = process.env.ETL_TEST_SCHEMA_REGISTRY_URL
  if (external !== undefined && external !== "") return { url: external.replace(/\/+$/, ""), stop: async () => {} }
  const jar = await ensureBuilt()
  // A registry that exits before it listens (its free port taken in the meantime by another server starting beside
  // it) is started again on another port, twice at most.
  let attempt = 0
  let started: { readonly java: Awaited<ReturnType<typeof startJava>>; readonly dir: string; readonly port: number }
  for (;;) {
    attempt++
    const dir = tempDir("schema-registry")
    const port = await freePort()
    try {
      const java = await startJava({
        name: "schema-registry",
        jar,
        args: [
          `-Dquarkus.http.port=${port}`,
          "-Dquarkus.http.host=127.0.0.1",
          // Each server has its own in-memory database (the name is the JVM's own anyway; kept explicit).
          "-Dquarkus.datasource.jdbc.url=jdbc:h2:mem:registry_db",
          "-Dquarkus.datasource.jdbc.initial-size=2",
          "-Dquarkus.datasource.jdbc.min-size=2",
          "-Dquarkus.datasource.jdbc.max-size=10",
          `-Djava.io.tmpdir=${dir}`
        ],
        cwd: dir,
        port,
        heap: "384m",
        timeoutMs: 120_000
      })
      started = { java, dir, port }
      break
    } catch (error) {
      if (attempt >= 3 || !(error instanceof Error) || !error.message.includes("exited")) throw error
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
  const { java, dir, port } = started
  const stop = async () => {
    await java.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
  const url = `http://127.0.0.1:${port}/apis/ccompat/v7`
  const deadline = Date.now() + 60_000
  while (!(await answersOk(`${url}/subjects`))) {
    if (Date.now() > deadline) {
      const log = tail(java.logFile)
      await stop()
      throw new Error(`The schema registry on 127.0.0.1:${port} did not answer ${url}/subjects in time:\n${log}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return { url, stop }
}

/**
 * The registry of the run (started by the global setup, or `ETL_TEST_SCHEMA_REGISTRY_URL`); when the setup started
 * none (a run whose file filter does not name the registry), one of the caller's own, which `stop` stops.
 */
export const shared = async (): Promise<Started> => {
  const url = inject("schemaRegistryUrl")
  if (url !== undefined && url !== "") return { url, stop: async () => {} }
  return start()
}

/**
 * For a test file: takes the run's registry (see {@link shared}) before its tests and lets it go after them; the URL
 * getter it returns fails when the registry did not start. The first run builds the registry with Maven (minutes on a
 * machine whose Maven cache is empty), hence the long hook timeout.
 */
export const useShared = (): (() => string) => {
  let server: Started | undefined
  beforeAll(async () => {
    server = await shared()
  }, 900_000)
  afterAll(async () => {
    await server?.stop()
  })
  return () => {
    if (server === undefined) throw new Error("the schema registry did not start")
    return server.url
  }
}

/** A subject name unique to one test. */
export const uniqueSubject = (prefix: string): string => `${prefix}-${crypto.randomUUID().slice(0, 8)}-value`
