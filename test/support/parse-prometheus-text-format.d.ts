/** Types of `parse-prometheus-text-format` (the package ships none). */
declare module "parse-prometheus-text-format" {
  /** A sample of a counter, gauge or untyped family. */
  export interface Sample {
    readonly value: string
    readonly labels?: Readonly<Record<string, string>>
    readonly timestamp_ms?: string
  }
  /** A sample of a histogram or summary family. */
  export interface Distribution {
    readonly labels?: Readonly<Record<string, string>>
    readonly buckets?: Readonly<Record<string, string>>
    readonly quantiles?: Readonly<Record<string, string>>
    readonly count: string
    readonly sum: string
  }
  /** A metric family: its name, help, type and samples. */
  export interface Family {
    readonly name: string
    readonly help: string
    readonly type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED"
    readonly metrics: ReadonlyArray<Sample | Distribution>
  }
  /** Parses Prometheus text exposition format; throws on malformed input. */
  export default function parsePrometheusTextFormat(text: string): Array<Family>
}
