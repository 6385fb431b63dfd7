/**
 * Latency and segment counts of a streaming run, kept across its attempts: end-to-end latency is a batch's commit (or
 * write) time minus its oldest source timestamp, summarised by a DDSketch.
 */
import { DDSketch } from "@datadog/sketches-js"
import type { StreamingReport } from "../../core/RunReport.ts"

/** The streaming figures of a run. */
export class StreamingStats {
  segments = 0
  batches = 0
  max = 0
  readonly sketch = new DDSketch({ relativeAccuracy: 0.01 })
  /** Records the end-to-end latency of a batch made visible at `now`. */
  observe(sourceTimestamp: number | undefined, now: number): number | undefined {
    if (sourceTimestamp === undefined) return undefined
    const latency = Math.max(0, now - sourceTimestamp)
    this.batches++
    if (latency > this.max) this.max = latency
    this.sketch.accept(latency)
    return latency
  }
  report(): StreamingReport {
    const round = (q: number) => Math.round(Math.min(this.max, this.sketch.getValueAtQuantile(q)))
    return {
      segments: this.segments,
      ...(this.batches === 0
        ? {}
        : { latencyMs: { batches: this.batches, p50: round(0.5), p95: round(0.95), max: Math.round(this.max) } })
    }
  }
}
