/**
 * Plumbing for the Java test servers (Kafka, S3Proxy): resolving their jars once with Maven into a cache directory,
 * finding free ports, starting a JVM and waiting until its port answers, and stopping it by pid.
 *
 * This is test infrastructure at the process boundary, run by vitest's globalSetup, so it is plain promise code.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as nodePath from "node:path"
import { promisify } from "node:util"

const run = promisify(execFile)

/** Where resolved jars are kept between runs (`ETL_TEST_SERVER_CACHE`, default `~/.cache/effect-etl/test-servers`). */
export const cacheRoot = (): string =>
  process.env.ETL_TEST_SERVER_CACHE ?? nodePath.join(os.homedir(), ".cache", "effect-etl", "test-servers")

/**
 * Resolves the dependencies of the pom in `pomDir` into `<cache>/<name>/lib` with `mvn dependency:copy-dependencies`,
 * unless a previous run completed it. Returns the lib directory.
 */
export const ensureJars = async (name: string, pomDir: string): Promise<string> => {
  const lib = nodePath.join(cacheRoot(), name, "lib")
  const done = nodePath.join(cacheRoot(), name, ".complete")
  if (fs.existsSync(done)) return lib
  fs.rmSync(lib, { recursive: true, force: true })
  fs.mkdirSync(lib, { recursive: true })
  try {
    await run("mvn", ["-q", "-B", "dependency:copy-dependencies", `-DoutputDirectory=${lib}`], {
      cwd: pomDir,
      maxBuffer: 64 * 1024 * 1024
    })
  } catch (cause) {
    const e = cause as { readonly stdout?: string; readonly stderr?: string; readonly message?: string }
    throw new Error(
      `Cannot resolve the ${name} test server with Maven (needs Java 17+, Maven and Maven Central): ${e.message ?? ""}\n${e.stdout ?? ""}${e.stderr ?? ""}`
    )
  }
  fs.writeFileSync(done, new Date().toISOString())
  return lib
}

/** A free TCP port on 127.0.0.1. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const answers = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

/** A started JVM. */
export interface JavaProcess {
  readonly child: ChildProcess
  readonly logFile: string
  readonly stop: () => Promise<void>
}

/** Tails the last lines of a log for error messages. */
export const tail = (file: string, lines = 40): string => {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-lines).join("\n")
  } catch {
    return ""
  }
}

/** Runs a Java program to completion (e.g. Kafka's StorageTool); rejects with its output when it fails. */
export const runJava = async (lib: string, args: ReadonlyArray<string>, cwd: string): Promise<void> => {
  try {
    await run("java", ["-cp", nodePath.join(lib, "*"), ...args], { cwd, maxBuffer: 16 * 1024 * 1024 })
  } catch (cause) {
    const e = cause as { readonly stdout?: string; readonly stderr?: string; readonly message?: string }
    throw new Error(`${e.message ?? "java failed"}\n${e.stdout ?? ""}${e.stderr ?? ""}`)
  }
}

/**
 * Starts a JVM with `lib/*` on the class path and `args` (main class and its arguments), or, given `jar`, runs that
 * jar with `args` as JVM options (`-D...`); then waits until `port` answers on 127.0.0.1 (at most `timeoutMs`).
 * The process is stopped by its pid (SIGTERM, then SIGKILL after 10 s).
 */
export const startJava = async (options: {
  readonly name: string
  readonly lib?: string
  readonly jar?: string
  readonly args: ReadonlyArray<string>
  readonly cwd: string
  readonly port: number
  readonly heap?: string
  readonly timeoutMs?: number
}): Promise<JavaProcess> => {
  const logFile = nodePath.join(options.cwd, `${options.name}.log`)
  const out = fs.openSync(logFile, "a")
  const heap = options.heap ?? "512m"
  const child = spawn(
    "java",
    [
      `-Xms${heap}`,
      `-Xmx${heap}`,
      "-XX:+UseSerialGC",
      "-Xshare:auto",
      ...(options.jar !== undefined
        ? [...options.args, "-jar", options.jar]
        : ["-cp", nodePath.join(options.lib ?? ".", "*"), ...options.args])
    ],
    { cwd: options.cwd, stdio: ["ignore", out, out] }
  )
  fs.closeSync(out)
  let exited: number | null | undefined
  child.once("exit", (code) => {
    exited = code
  })
  const stop = async () => {
    if (exited !== undefined || child.pid === undefined) return
    const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()))
    process.kill(child.pid, "SIGTERM")
    const timer = setTimeout(() => {
      if (exited === undefined && child.pid !== undefined) process.kill(child.pid, "SIGKILL")
    }, 10_000)
    await gone
    clearTimeout(timer)
  }
  const deadline = Date.now() + (options.timeoutMs ?? 90_000)
  while (!(await answers(options.port))) {
    if (exited !== undefined)
      throw new Error(`${options.name} exited with ${exited} before it listened:\n${tail(logFile)}`)
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`${options.name} did not listen on 127.0.0.1:${options.port} in time:\n${tail(logFile)}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return { child, logFile, stop }
}

/** A fresh temporary directory for one server. */
export const tempDir = (name: string): string => fs.mkdtempSync(nodePath.join(os.tmpdir(), `etl-${name}-`))
