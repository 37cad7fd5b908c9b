/**
 * Input limits of the template layer, with Heat's defaults where Heat has one
 * (`max_template_size`, `max_resources_per_stack`, `max_nested_stack_depth`) and docs/security.md's (S1–S3, S6) elsewhere.
 */

/**
 * Every bound the template layer enforces. All are configurable; {@link DEFAULT_TEMPLATE_LIMITS}
 * holds the defaults.
 *
 * @example
 * ```ts
 * const limits = resolveTemplateLimits({ maxResources: 200 });
 * parseTemplate(text, { limits });
 * ```
 */
export interface TemplateLimits {
  /** bytes of template or environment text (Heat's `max_template_size`, 512 KiB) */
  maxTemplateBytes: number;
  /** nesting of mappings and lists, counted after aliases are expanded (S1, S2) */
  maxDepth: number;
  /** values in one document, every alias counted as a full copy (S1) */
  maxNodes: number;
  /** YAML aliases in one document (the `yaml` package's own default, S1) */
  maxAliasCount: number;
  /** resources in one template, and in a template with all its nested templates (Heat's `max_resources_per_stack`) */
  maxResources: number;
  /** bytes of one parameter value as given by the user or an environment (S3) */
  maxParameterValueBytes: number;
  /** characters of one `allowed_pattern` (the regex engine is linear, this bounds its program) */
  maxPatternLength: number;
  /**
   * steps of the regex engine for all the `allowed_pattern` checks of one call (the defaults of
   * one `parseTemplate`, the values of one `resolveParameters`): linear time still multiplies
   * value length by program size, and a template may have many parameters (S6)
   */
  maxPatternSteps: number;
  /**
   * template resources nested in template resources (Heat's `max_nested_stack_depth`): a
   * stack's own resources are at depth 0, a nested stack's at 1 (checkNestedTemplates)
   */
  maxNestedDepth: number;
  /** function calls and values visited by one evaluation (S6) */
  maxEvaluationSteps: number;
  /** bytes of strings and values one evaluation may produce (S6) */
  maxEvaluationOutputBytes: number;
}

/**
 * The defaults: Heat's where it has one, docs/security.md's otherwise.
 *
 * @example
 * ```ts
 * DEFAULT_TEMPLATE_LIMITS.maxTemplateBytes; // 524288
 * ```
 */
export const DEFAULT_TEMPLATE_LIMITS: Readonly<TemplateLimits> = Object.freeze({
  maxTemplateBytes: 524_288,
  maxDepth: 64,
  maxNodes: 100_000,
  maxAliasCount: 100,
  maxResources: 1000,
  maxParameterValueBytes: 65_536,
  maxPatternLength: 1024,
  maxPatternSteps: 20_000_000,
  maxNestedDepth: 5,
  maxEvaluationSteps: 1_000_000,
  maxEvaluationOutputBytes: 4 * 1024 * 1024,
});

/**
 * Fills the limits not given with the defaults.
 *
 * @example
 * ```ts
 * resolveTemplateLimits({ maxDepth: 32 }).maxTemplateBytes; // 524288
 * ```
 */
export function resolveTemplateLimits(partial: Partial<TemplateLimits> = {}): TemplateLimits {
  const out = { ...DEFAULT_TEMPLATE_LIMITS };
  for (const key of Object.keys(DEFAULT_TEMPLATE_LIMITS) as (keyof TemplateLimits)[]) {
    const v = partial[key];
    if (v !== undefined) out[key] = v;
  }
  return out;
}
