/**
 * The progress line a terminal user sees on stderr while a pipeline runs: records read, a percentage and an ETA when
 * the source told the size of its input, the read rate and the rate of every later stage, measured over the last few
 * seconds (so a slow start or a stall shows), in one line that fits 120 columns:
 *
 * `quickstart: 42% 1.2M/2.9M read · 310K/s · ETA 0:05 · validate 305K/s · sink 300K/s`
 */
import type { InputSize, RunContext } from "../core/Stage.ts"
import type { ProgressReporter } from "../runtime/Progress.ts"

/** The widest line drawn, in columns. */
export const MAX_WIDTH = 120

const formatCount = (n: number): string =>
  n >= 1e9
    ? `${(n / 1e9).toFixed(1)}G`
    : n >= 1e6
      ? `${(n / 1e6).toFixed(1)}M`
      : n >= 1e4
        ? `${Math.round(n / 1e3)}K`
        : n >= 1e3
          ? `${(n / 1e3).toFixed(1)}K`
          : String(Math.round(n))

const formatBytes = (n: number): string =>
  n >= 1024 ** 3
    ? `${(n / 1024 ** 3).toFixed(1)}GiB`
    : n >= 1024 ** 2
      ? `${(n / 1024 ** 2).toFixed(1)}MiB`
      : n >= 1024
        ? `${(n / 1024).toFixed(1)}KiB`
        : `${n}B`

const formatDuration = (ms: number): string => {
  const total = Math.ceil(ms / 1000)
  const h = Math.floor(total / 3600)
  const m = Math.floor((total % 3600) / 60)
  const s = String(total % 60).padStart(2, "0")
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`
}

/** The key under which a `RateWindow` tracks the source's bytes. */
export const BYTES = "\u0000bytes"

/**
 * Rates per stage over a sliding window: `observe` records the counters at a time, `rate` is the change per second
 * between the oldest sample still in the window and the newest one.
 */
export class RateWindow {
  private readonly samples: Array<{ readonly at: number; readonly values: ReadonlyMap<string, number> }> = []
  readonly windowMs: number

  constructor(windowMs = 5000) {
    this.windowMs = windowMs
  }

  /** Records every stage's records in (and the source's bytes) at `at` milliseconds. */
  observe(ctx: RunContext, at: number): void {
    const values = new Map<string, number>()
    let bytes = 0
    for (const s of ctx.stages()) {
      values.set(s.info.name, s.recordsIn)
      if (s.info.kind === "source") bytes += s.bytes
    }
    values.set(BYTES, bytes)
    this.samples.push({ at, values })
    // Keeps one sample at or before the window's start, so that the window spans its whole length once it can.
    while (this.samples.length > 2 && this.samples[1]!.at <= at - this.windowMs) this.samples.shift()
  }

  /** Per second, of a stage's records in (or of the source's bytes, with `BYTES`); `undefined` before two samples. */
  rate(key: string): number | undefined {
    const first = this.samples[0]
    const last = this.samples[this.samples.length - 1]
    if (first === undefined || last === undefined || last.at <= first.at) return undefined
    const delta = (last.values.get(key) ?? 0) - (first.values.get(key) ?? 0)
    return Math.max(0, (delta * 1000) / (last.at - first.at))
  }
}

/** What the line shows besides the counters: the input size, when known, and the recent rates. */
export interface View {
  readonly size?: InputSize | undefined
  readonly rates?: RateWindow | undefined
}

/**
 * Renders one progress line from a run's counters, at most `MAX_WIDTH` columns: the stages' rates that do not fit are
 * left out. Without a window the rates are averages since the start, and the elapsed time is shown.
 */
export const line = (ctx: RunContext, elapsedMs: number, view: View = {}): string => {
  const stages = ctx.stages()
  let read = 0
  let bytes = 0
  let rejected = 0
  const sources: Array<string> = []
  for (const s of stages) {
    if (s.info.kind === "source") {
      read += s.recordsIn
      bytes += s.bytes
      sources.push(s.info.name)
    }
    if (s.info.kind !== "sink" && s.info.kind !== "dead-letters") rejected += s.rejected
  }
  const seconds = elapsedMs / 1000
  // Until the window holds two samples, the average since the start stands in for it.
  const rateOf = (key: string, total: number): number => view.rates?.rate(key) ?? (seconds > 0 ? total / seconds : 0)
  const readRate = sources.reduce(
    (sum, name) => sum + rateOf(name, stages.find((s) => s.info.name === name)?.recordsIn ?? 0),
    0
  )

  const size = view.size
  let head = `${formatCount(read)} read`
  let eta: string | undefined
  const progress = (done: number, total: number, rate: number) => {
    const fraction = Math.min(1, done / total)
    // An estimate may be short of the truth: past it, the percentage stays below 100 and no ETA is guessed.
    const pct = done >= total ? (size?.estimated === true ? 99 : 100) : Math.floor(fraction * 100)
    if (done < total && rate > 0) eta = formatDuration(((total - done) / rate) * 1000)
    return `${pct}%`
  }
  if (size?.records !== undefined && size.records > 0) {
    const pct = progress(read, size.records, readRate)
    head = `${pct} ${formatCount(read)}/${size.estimated === true ? "~" : ""}${formatCount(size.records)} read`
  } else if (size?.bytes !== undefined && size.bytes > 0) {
    const pct = progress(bytes, size.bytes, rateOf(BYTES, bytes))
    head = `${pct} ${formatCount(read)} read (${formatBytes(bytes)}/${formatBytes(size.bytes)})`
  }
  const parts = [`${ctx.pipeline}: ${head}`, `${formatCount(readRate)}/s`]
  if (eta !== undefined) parts.push(`ETA ${eta}`)
  if (rejected > 0) parts.push(`${formatCount(rejected)} rejected`)
  if (view.rates === undefined) parts.push(`${seconds.toFixed(1)}s`)
  let text = parts.join(" · ")
  for (const s of stages) {
    if (s.info.kind !== "transform" && s.info.kind !== "sink") continue
    const part = ` · ${s.info.name} ${formatCount(rateOf(s.info.name, s.recordsIn))}/s`
    if (text.length + part.length > MAX_WIDTH) break
    text += part
  }
  return text.length > MAX_WIDTH ? `${text.slice(0, MAX_WIDTH - 1)}…` : text
}

/** A reporter that redraws the line on a terminal at most every `intervalMs`, with rates over the last `windowMs`. */
export const terminal = (stream: NodeJS.WriteStream, intervalMs = 200, windowMs = 5000): ProgressReporter => {
  const started = performance.now()
  const rates = new RateWindow(windowMs)
  let size: InputSize | undefined
  let last = Number.NEGATIVE_INFINITY
  const draw = (ctx: RunContext, now: number) => {
    rates.observe(ctx, now)
    return line(ctx, now - started, { size, rates })
  }
  return {
    size: (known) => {
      size = known
    },
    update: (ctx) => {
      const now = performance.now()
      if (now - last < intervalMs) return
      last = now
      stream.write(`\r\x1b[2K${draw(ctx, now)}`)
    },
    done: (ctx) => {
      // The last line gives the averages of the whole run.
      stream.write(`\r\x1b[2K${line(ctx, performance.now() - started, { size })}\n`)
    }
  }
}
