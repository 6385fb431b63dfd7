/**
 * The layers of effect-etl (see "Architecture" in CONTRIBUTING.md): imports point down only, no circles, a connector
 * folder knows no other connector, and only `Node*` driver files import the npm drivers. `npm test` runs this check.
 *
 *   cli · index       the command line and the package's entry points
 *   cluster           runs on Effect Cluster: workflows, runners, staging in PostgreSQL
 *   config            the JSON front door: config Schema, registries, connections, build/load
 *   pipeline          the typed front door: from / to / run and every transform
 *   runtime · observability
 *   transforms · connectors/<system>   (siblings: neither imports the other)
 *   core              Batch, Source, Sink, Flow, Plan, errors, RunReport, Stop, config kernel
 *   formats · schema · expr · secrets
 */
const layers = [
  { name: "entry", path: "^src/(cli/|main\\.ts$|index\\.ts$)" },
  { name: "cluster", path: "^src/cluster/" },
  { name: "config", path: "^src/config/" },
  { name: "pipeline", path: "^src/pipeline/" },
  { name: "runtime", path: "^src/(runtime|observability)/" },
  { name: "transforms/connectors", path: "^src/(transforms|connectors)/" },
  { name: "core", path: "^src/core/" },
  { name: "base", path: "^src/(formats|schema|expr|secrets)/" }
]

const upward = layers.flatMap((layer, i) =>
  i === 0
    ? []
    : [
        {
          name: `no-upward-from-${layer.name.replace("/", "-")}`,
          comment: `${layer.name} sits below ${layers
            .slice(0, i)
            .map((l) => l.name)
            .join(", ")}: it must not import them`,
          severity: "error",
          from: { path: layer.path },
          to: { path: layers.slice(0, i).map((l) => l.path) }
        }
      ]
)

const drivers = "^(pg|pg-copy-streams|mysql2|@platformatic/kafka|@aws-sdk/[^/]+)$"

module.exports = {
  forbidden: [
    ...upward,
    {
      name: "no-circular",
      comment: "modules must not import each other in a circle",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true }
    },
    {
      name: "transforms-and-connectors-are-siblings",
      comment: "transforms and connectors must not import each other",
      severity: "error",
      from: { path: "^src/transforms/" },
      to: { path: "^src/connectors/" }
    },
    {
      name: "connectors-and-transforms-are-siblings",
      comment: "transforms and connectors must not import each other",
      severity: "error",
      from: { path: "^src/connectors/" },
      to: { path: "^src/transforms/" }
    },
    {
      name: "a-connector-knows-no-other-connector",
      comment:
        "a connector folder imports only itself, the shared connectors/internal, and (postgres, mysql) connectors/sql",
      severity: "error",
      from: { path: "^src/connectors/([^/]+)/" },
      to: {
        path: "^src/connectors/[^/]+/",
        pathNot: ["^src/connectors/$1/", "^src/connectors/(internal|sql)/"]
      }
    },
    {
      name: "postgres-and-mysql-only-share-sql",
      comment: "connectors/sql is shared by postgres and mysql; nothing else may import it",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/(connectors/(sql|postgres|mysql)/|config/|index\\.ts$)" },
      to: { path: "^src/connectors/sql/" }
    },
    {
      name: "sql-imports-sql-only",
      comment: "connectors/sql is the shared SQL code: it must not import a SQL system",
      severity: "error",
      from: { path: "^src/connectors/(sql|internal)/" },
      to: { path: "^src/connectors/", pathNot: "^src/connectors/(sql|internal)/" }
    },
    {
      name: "internal-stays-internal",
      comment: "an internal/ folder is imported only from within the top-level folder that owns it",
      severity: "error",
      from: { path: "^src/([^/]+)/" },
      to: { path: "^src/[^/]+/(internal|[^/]+/internal)/", pathNot: "^src/$1/" }
    },
    {
      name: "drivers-only-in-Node-files",
      comment: "only Node*.ts driver files import the npm drivers (pg, mysql2, @platformatic/kafka, the AWS SDK)",
      severity: "error",
      from: { path: "^src/", pathNot: "/Node[A-Z][^/]*\\.ts$" },
      to: { dependencyTypes: ["npm", "npm-dev", "npm-optional", "npm-peer", "npm-no-pkg", "npm-unknown"], path: drivers }
    },
    {
      name: "facades-load-no-driver",
      comment: "importing the core, a transform, or a connector's facade must not load a driver",
      severity: "error",
      from: {
        path: "^src/(core|transforms|formats|schema|expr|pipeline|runtime)/|^src/connectors/[^/]+/[^/]+\\.ts$|^src/index\\.ts$",
        pathNot: "/Node[A-Z][^/]*\\.ts$|^src/connectors/[^/]+/index\\.ts$"
      },
      to: { reachable: true, path: "node_modules/(pg|pg-copy-streams|mysql2|@platformatic/kafka|@aws-sdk/client-s3)/" }
    },
    {
      name: "no-unresolvable",
      comment: "every import resolves",
      severity: "error",
      from: {},
      to: { couldNotResolve: true }
    }
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    includeOnly: ["^src/", "node_modules/(pg|pg-copy-streams|mysql2|@platformatic/kafka|@aws-sdk/client-s3)/"],
    tsPreCompilationDeps: true,
    parser: "swc",
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      extensions: [".ts", ".js", ".d.ts"]
    }
  }
}
