/**
 * The parsed, statically validated template: what every later step (parameters, conditions,
 * dependencies, evaluation) works from. Values that may hold intrinsic functions are
 * expression trees; everything else is plain data.
 */
import type { JsonObject } from '../../core/json.js';
import type { Expr } from './expression.js';
import type { ParameterSchema } from './parameter-schema.js';
import type { TemplateVersion } from './versions.js';

/**
 * One resource of the template.
 *
 * @example
 * ```ts
 * template.resources['server']?.type; // 'OS::Nova::Server'
 * ```
 */
export interface ResourceDefinition {
  name: string;
  /** the type as written; the environment's registry maps it to an implementation */
  type: string;
  properties: Expr | null;
  metadata: Expr | null;
  /** explicit `depends_on`, as a list */
  dependsOn: string[];
  /** `Delete`, `Retain` or `Snapshot` when literal; an expression when computed */
  deletionPolicy: Expr | null;
  updatePolicy: Expr | null;
  description: string | null;
  /** parsed in condition mode: a condition name, a boolean or a condition function */
  condition: Expr | null;
  externalId: Expr | null;
}

/**
 * One output.
 *
 * @example
 * ```ts
 * template.outputs['url']?.description; // 'The URL of the service'
 * ```
 */
export interface OutputDefinition {
  name: string;
  value: Expr;
  description: string | null;
  condition: Expr | null;
}

/**
 * An entry of `parameter_groups`.
 *
 * @example
 * ```ts
 * template.parameterGroups[0]?.parameters; // ['db_password', 'db_port']
 * ```
 */
export interface ParameterGroup {
  label: string | null;
  description: string | null;
  parameters: string[];
}

/**
 * A parsed template.
 *
 * @example
 * ```ts
 * const template = parseTemplate(text);
 * template.version.date; // '2018-08-31'
 * ```
 */
export interface Template {
  version: TemplateVersion;
  /** the version as written (`pike`, `2017-09-01`, …) */
  versionText: string;
  description: string | null;
  parameterGroups: ParameterGroup[];
  parameters: Record<string, ParameterSchema>;
  conditions: Record<string, Expr>;
  resources: Record<string, ResourceDefinition>;
  outputs: Record<string, OutputDefinition>;
  /** the template as plain JSON, to store (never the YAML alias graph) */
  source: JsonObject;
}
