/**
 * The orchestration schema module (`orchestration`): stacks, the template sets their actions
 * converge to, one row per physical resource, and the event history. Written once for the
 * three dialects (src/store/schema/portable.ts); applied by `stoker migrate` and by engines.
 *
 * Times here are wall-clock milliseconds for display (creation_time, event_time): nothing
 * coordinates by them. What coordinates is the resource row's hold (run, atom, fencing
 * token) and the stack's current traversal (docs/orchestration.md).
 */
import { portableSchemaModule } from '../../store/schema/portable.js';

export const orchestrationSchema = portableSchemaModule('orchestration', [
  {
    version: 1,
    name: 'stacks, templates, resources, events',
    statements: (t, dialect) => {
      const mysql = dialect === 'mysql';
      return [
        `CREATE TABLE IF NOT EXISTS {p}stacks (
          id ${t.id} NOT NULL PRIMARY KEY,
          project ${t.string} NOT NULL,
          name ${t.string} NOT NULL,
          live_name ${t.string},
          parent_id ${t.id},
          parent_resource ${t.string},
          action ${t.string} NOT NULL,
          status ${t.string} NOT NULL,
          status_reason ${t.text} NOT NULL,
          tags ${t.text} NOT NULL,
          timeout_mins ${t.int},
          disable_rollback ${t.int} NOT NULL,
          traversal ${t.id},
          traversal_owner ${t.text},
          run_id ${t.id},
          template_set ${t.id},
          previous_set ${t.id},
          created_at ${t.bigint} NOT NULL,
          updated_at ${t.bigint},
          deleted_at ${t.bigint}${
            mysql ? `, UNIQUE KEY {p}stacks_live_name (project, live_name), KEY {p}stacks_parent (parent_id)` : ''
          })${t.tableOptions}`,
        ...(mysql
          ? []
          : [
              `CREATE UNIQUE INDEX IF NOT EXISTS {p}stacks_live_name ON {p}stacks (project, live_name)`,
              `CREATE INDEX IF NOT EXISTS {p}stacks_parent ON {p}stacks (parent_id)`,
            ]),
        `CREATE TABLE IF NOT EXISTS {p}stack_templates (
          id ${t.id} NOT NULL PRIMARY KEY,
          stack_id ${t.id} NOT NULL,
          body ${t.text} NOT NULL,
          created_at ${t.bigint} NOT NULL${mysql ? `, KEY {p}stack_templates_stack (stack_id)` : ''}
        )${t.tableOptions}`,
        ...(mysql ? [] : [`CREATE INDEX IF NOT EXISTS {p}stack_templates_stack ON {p}stack_templates (stack_id)`]),
        `CREATE TABLE IF NOT EXISTS {p}stack_resources (
          id ${t.serialKey},
          stack_id ${t.id} NOT NULL,
          name ${t.string} NOT NULL,
          generation ${t.int} NOT NULL,
          current_row ${t.int} NOT NULL,
          deleted ${t.int} NOT NULL,
          type ${t.string} NOT NULL,
          physical_id ${t.string},
          action ${t.string} NOT NULL,
          status ${t.string} NOT NULL,
          status_reason ${t.text} NOT NULL,
          properties ${t.text} NOT NULL,
          data ${t.text} NOT NULL,
          attributes ${t.text},
          reference ${t.text},
          requires ${t.text} NOT NULL,
          metadata ${t.text},
          template_set ${t.id},
          nested_stack ${t.id},
          hold_run ${t.id},
          hold_atom ${t.string},
          hold_token ${t.string},
          created_at ${t.bigint} NOT NULL,
          updated_at ${t.bigint}${mysql ? `, UNIQUE KEY {p}stack_resources_stack (stack_id, name, generation)` : ''}
        )${t.tableOptions}`,
        ...(mysql ? [] : [`CREATE UNIQUE INDEX IF NOT EXISTS {p}stack_resources_stack ON {p}stack_resources (stack_id, name, generation)`]),
        `CREATE TABLE IF NOT EXISTS {p}stack_events (
          id ${t.serialKey},
          stack_id ${t.id} NOT NULL,
          resource_name ${t.string} NOT NULL,
          resource_type ${t.string},
          physical_id ${t.string},
          status ${t.string} NOT NULL,
          reason ${t.text} NOT NULL,
          created_at ${t.bigint} NOT NULL${mysql ? `, KEY {p}stack_events_stack (stack_id, id)` : ''}
        )${t.tableOptions}`,
        ...(mysql ? [] : [`CREATE INDEX IF NOT EXISTS {p}stack_events_stack ON {p}stack_events (stack_id, id)`]),
        `CREATE TABLE IF NOT EXISTS {p}orchestration_settings (
          name ${t.id} NOT NULL PRIMARY KEY,
          value ${t.text} NOT NULL
        )${t.tableOptions}`,
        `CREATE TABLE IF NOT EXISTS {p}software_configs (
          id ${t.id} NOT NULL PRIMARY KEY,
          body ${t.text} NOT NULL
        )${t.tableOptions}`,
      ];
    },
  },
]);
