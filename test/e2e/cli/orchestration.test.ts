/**
 * `stoker orchestration template validate` and `stoker orchestration resource type list|show`,
 * run as a user runs them: the built CLI in a child process, templates on disk.
 */
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCliAsync, json, runCli, tempDir, writeFile, type Built, type CliResult } from './harness.js';

let built: Built;
let dir: { path: string; remove(): void };

beforeAll(async () => {
  built = await buildCliAsync();
  dir = tempDir('stoker-orchestration-');
  writeFile(
    dir.path,
    'web.yaml',
    `heat_template_version: 2018-08-31
description: A web server
parameter_groups:
  - label: Database
    parameters: [db_password]
parameters:
  flavor:
    type: string
    label: Flavor
    default: m1.small
    constraints:
      - allowed_values: [m1.small, m1.large]
        description: a known flavor
  count:
    type: number
    default: 2
    constraints:
      - range: {min: 1, max: 10}
  db_password:
    type: string
    hidden: true
    default: s3cret-default
resources:
  rand:
    type: OS::Heat::RandomString
    properties:
      length: {get_param: count}
  server:
    type: nested/server.yaml
    properties:
      name: {get_attr: [rand, value]}
      script: {get_file: scripts/boot.sh}
outputs:
  password:
    value: {get_attr: [rand, value]}
`,
  );
  writeFile(dir.path, 'scripts/boot.sh', '#!/bin/sh\necho booted\n');
  writeFile(
    dir.path,
    'nested/server.yaml',
    `heat_template_version: 2018-08-31
description: One server
parameters:
  name: {type: string, description: The server name}
  script: {type: string}
resources:
  motd:
    type: OS::Heat::Value
    properties:
      value: {get_file: motd.txt}
`,
  );
  writeFile(dir.path, 'nested/motd.txt', 'welcome\n');
  writeFile(dir.path, 'env-a.yaml', 'parameters:\n  flavor: m1.large\nparameter_defaults:\n  count: 3\n');
  writeFile(dir.path, 'env-b.yaml', 'parameter_defaults:\n  count: 4\nresource_registry:\n  My::Server: nested/server.yaml\n');
});

afterAll(() => {
  built?.remove();
  dir?.remove();
});

const cli = (...args: string[]) => runCli(built, args, { cwd: dir.path });
const validate = (...args: string[]) => cli('orchestration', 'template', 'validate', ...args);

/** The one error line on stderr: checks its shape and code, returns its message. */
function errorLine(r: CliResult, code: string): string {
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  const m = /^stoker: error: (.+) \(code (STOKER_[A-Z_]+)\)$/.exec(lines[0]!);
  expect(m, r.stderr).not.toBeNull();
  expect(m![2]).toBe(code);
  return m![1]!;
}

interface ValidateJson {
  Description: string;
  Parameters: Record<string, Record<string, unknown>>;
  ParameterGroups?: unknown[];
  NestedParameters?: Record<string, { Type: string; Description: string; Parameters: Record<string, Record<string, unknown>> }>;
  Environment: { parameters: Record<string, unknown>; parameter_defaults: Record<string, unknown>; resource_registry: unknown };
}

describe('orchestration template validate', () => {
  it("prints Heat's validate result as YAML by default", async () => {
    const r = await validate('-t', 'web.yaml');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`Description: A web server
Parameters:
  count:
    Default: 2
    Description: ''
    Label: count
    MaxValue: 10
    MinValue: 1
    NoEcho: 'false'
    Type: Number
  db_password:
    Default: s3cret-default
    Description: ''
    Label: db_password
    NoEcho: 'true'
    Type: String
  flavor:
    AllowedValues:
    - m1.small
    - m1.large
    ConstraintDescription: a known flavor
    Default: m1.small
    Description: ''
    Label: Flavor
    NoEcho: 'false'
    Type: String
ParameterGroups:
- label: Database
  parameters:
  - db_password
Environment:
  event_sinks: []
  parameter_defaults: {}
  parameters: {}
  resource_registry:
    nested/server.yaml: nested/server.yaml
    resources: {}
`);
  });

  it('merges environments in order, takes --parameter values, and masks hidden ones', async () => {
    const r = await validate('-t', 'web.yaml', '-e', 'env-a.yaml', '-e', 'env-b.yaml', '--parameter', 'db_password=hunter22', '-f', 'json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('hunter22');
    const out = json<ValidateJson>(r);
    expect(out.Parameters['flavor']).toMatchObject({ Value: 'm1.large', Default: 'm1.small' });
    expect(out.Parameters['count']).toMatchObject({ Default: 4, Type: 'Number' });
    // the template's own default is shown (as Heat: the caller sent it); the value given is not
    expect(out.Parameters['db_password']).toMatchObject({ Value: '******', Default: 's3cret-default', NoEcho: 'true' });
    expect(r.stdout).not.toContain('hunter22');
    expect(out.Environment).toEqual({
      // with Heat's entry for the template file used directly as a type
      resource_registry: { resources: {}, 'My::Server': 'nested/server.yaml', 'nested/server.yaml': 'nested/server.yaml' },
      parameters: { flavor: 'm1.large', db_password: '******' },
      parameter_defaults: { count: 4 },
      event_sinks: [],
    });
    // JSON keeps Heat's key order
    expect(Object.keys(out)).toEqual(['Description', 'Parameters', 'ParameterGroups', 'Environment']);
  });

  it('shows the nested templates’ parameters, with the values the parent gives them', async () => {
    const r = await validate('-t', 'web.yaml', '--show-nested', '-f', 'json', '-c', 'NestedParameters');
    expect(r.code, r.stderr).toBe(0);
    const out = json<ValidateJson>(r);
    expect(Object.keys(out)).toEqual(['NestedParameters']);
    expect(out.NestedParameters).toEqual({
      server: {
        Type: 'nested/server.yaml',
        Description: 'One server',
        Parameters: {
          name: { Type: 'String', Description: 'The server name', NoEcho: 'false', Label: 'name' },
          // read from scripts/boot.sh next to the template
          script: { Type: 'String', Description: '', NoEcho: 'false', Label: 'script', Value: '#!/bin/sh\necho booted\n' },
        },
      },
    });
  });

  it('prints the other formats', async () => {
    const table = await validate('-t', 'web.yaml', '-f', 'table', '-c', 'Description');
    expect(table.stdout).toBe(
      '+-------------+--------------+\n| Field       | Value        |\n+-------------+--------------+\n| Description | A web server |\n+-------------+--------------+\n',
    );
    const value = await validate('-t', 'web.yaml', '-f', 'value', '-c', 'Description', '-c', 'ParameterGroups');
    expect(value.stdout).toBe('A web server\n[\n  {\n    "label": "Database", \n    "parameters": [\n      "db_password"\n    ]\n  }\n]\n');
    const shell = await validate('-t', 'web.yaml', '-f', 'shell', '-c', 'Description', '--prefix', 'heat_');
    expect(shell.stdout).toBe('heat_description="A web server"\n');
    const noindent = await validate('-t', 'web.yaml', '-f', 'json', '--noindent', '-c', 'Description');
    expect(noindent.stdout).toBe('{"Description": "A web server"}\n');
  });

  it('accepts parameters without a value, as Heat does, and says what it could not check', async () => {
    writeFile(dir.path, 'novalue.yaml', 'heat_template_version: 2018-08-31\nparameters:\n  size: {type: number}\n');
    const r = await validate('-t', 'novalue.yaml', '-f', 'json');
    expect(r.code).toBe(0);
    expect(json<ValidateJson>(r).Description).toBe('No description');
    expect(r.stderr).toMatch(/^stoker: no value for size: the constraints, conditions and resource order/);
  });

  it('names the file, line and column of malformed YAML', async () => {
    writeFile(dir.path, 'bad.yaml', 'heat_template_version: 2018-08-31\nresources:\n  a:\n    type: OS::Heat::None\n   b: [\n');
    const r = await validate('-t', 'bad.yaml');
    expect(r.code).toBe(2);
    expect(errorLine(r, 'STOKER_TEMPLATE_INVALID')).toMatch(/^bad\.yaml line 5, column 1: /);
  });

  it('names the file, line and resource of an unknown resource type', async () => {
    writeFile(
      dir.path,
      'unknown.yaml',
      'heat_template_version: 2018-08-31\nresources:\n  a:\n    type: OS::Heat::None\n  srv:\n    type: OS::Nova::Server\n',
    );
    const r = await validate('-t', 'unknown.yaml');
    expect(r.code).toBe(2);
    expect(errorLine(r, 'STOKER_RESOURCE_TYPE_NOT_FOUND')).toBe(
      'unknown.yaml line 5: resources.srv: The Resource Type (OS::Nova::Server) could not be found.',
    );
  });

  it('finds an unknown type in a nested template, through the environment’s registry', async () => {
    writeFile(dir.path, 'uses-registry.yaml', 'heat_template_version: 2018-08-31\nresources:\n  s:\n    type: My::Thing\n');
    writeFile(dir.path, 'registry-env.yaml', 'resource_registry:\n  My::Thing: nested/thing.yaml\n');
    writeFile(
      dir.path,
      'nested/thing.yaml',
      'heat_template_version: 2018-08-31\nresources:\n  ok:\n    type: OS::Heat::None\n  bad:\n    type: OS::Foo::Bar\n',
    );
    const r = await validate('-t', 'uses-registry.yaml', '-e', 'registry-env.yaml');
    expect(r.code).toBe(2);
    expect(errorLine(r, 'STOKER_RESOURCE_TYPE_NOT_FOUND')).toBe(
      'uses-registry.yaml → nested/thing.yaml line 5: resources.bad: The Resource Type (OS::Foo::Bar) could not be found.',
    );
  });

  it('refuses a dependency cycle, and template resources that include each other', async () => {
    writeFile(
      dir.path,
      'cycle.yaml',
      'heat_template_version: 2018-08-31\nresources:\n  a:\n    type: OS::Heat::None\n    depends_on: b\n  b:\n    type: OS::Heat::None\n    depends_on: a\n',
    );
    const r = await validate('-t', 'cycle.yaml');
    expect(r.code).toBe(2);
    expect(errorLine(r, 'STOKER_TEMPLATE_CYCLE')).toBe('cycle.yaml line 3: resources: Circular dependency between resources: a → b → a');

    writeFile(dir.path, 'loop/a.yaml', 'heat_template_version: 2018-08-31\nresources:\n  b:\n    type: b.yaml\n');
    writeFile(dir.path, 'loop/b.yaml', 'heat_template_version: 2018-08-31\nresources:\n  a:\n    type: a.yaml\n');
    const loop = await runCli(built, ['orchestration', 'template', 'validate', '-t', 'a.yaml'], { cwd: `${dir.path}/loop` });
    expect(loop.code).toBe(2);
    expect(errorLine(loop, 'STOKER_TEMPLATE_CYCLE')).toBe('The template resources include each other: a.yaml → b.yaml → a.yaml');
  });

  it('reads no file outside the template’s directory, and none by URL', async () => {
    writeFile(
      dir.path,
      'sub/escape.yaml',
      'heat_template_version: 2018-08-31\nresources:\n  v:\n    type: OS::Heat::Value\n    properties:\n      value: {get_file: ../web.yaml}\n',
    );
    const up = await validate('-t', 'sub/escape.yaml');
    expect(up.code).toBe(2);
    expect(errorLine(up, 'STOKER_TEMPLATE_INVALID')).toMatch(
      /^sub\/escape\.yaml line 6: resources\.v\.properties\.value\.get_file: "\.\.\/web\.yaml": is outside .*, the directory the CLI reads files from$/,
    );
    writeFile(
      dir.path,
      'url.yaml',
      'heat_template_version: 2018-08-31\nresources:\n  v:\n    type: OS::Heat::Value\n    properties:\n      value: {get_file: "http://169.254.169.254/latest"}\n',
    );
    const url = await validate('-t', 'url.yaml');
    expect(errorLine(url, 'STOKER_TEMPLATE_INVALID')).toContain('no URL, absolute path');
    writeFile(
      dir.path,
      'missing.yaml',
      'heat_template_version: 2018-08-31\nresources:\n  v:\n    type: OS::Heat::Value\n    properties:\n      value: {get_file: nope.txt}\n',
    );
    const missing = await validate('-t', 'missing.yaml');
    expect(errorLine(missing, 'STOKER_TEMPLATE_INVALID')).toMatch(
      /^missing\.yaml line 6: .*"nope\.txt": cannot read .*nope\.txt: no such file$/,
    );
  });

  it('follows no symbolic link out of the directory, and refuses one name for two files', async () => {
    symlinkSync('/etc/hostname', join(dir.path, 'link.txt'));
    writeFile(
      dir.path,
      'link.yaml',
      'heat_template_version: 2018-08-31\nresources:\n  v:\n    type: OS::Heat::Value\n    properties:\n      value: {get_file: link.txt}\n',
    );
    expect(errorLine(await validate('-t', 'link.yaml'), 'STOKER_TEMPLATE_INVALID')).toMatch(
      /^link\.yaml line 6: .*"link\.txt": leads to \/etc\/hostname, outside .*, the directory the CLI reads files from$/,
    );

    // heatclient resolves each name next to the file that names it; the files map is keyed by the name
    writeFile(dir.path, 'motd.txt', 'top\n');
    writeFile(
      dir.path,
      'two.yaml',
      'heat_template_version: 2018-08-31\nresources:\n  v:\n    type: OS::Heat::Value\n    properties:\n      value: {get_file: motd.txt}\n  s:\n    type: nested/server.yaml\n    properties: {name: a, script: b}\n',
    );
    expect(errorLine(await validate('-t', 'two.yaml'), 'STOKER_TEMPLATE_INVALID')).toMatch(
      /^nested\/server\.yaml line 10: resources\.motd\.properties\.value\.get_file: "motd\.txt": names two files, .*motd\.txt \(from two\.yaml\) and .*nested\/motd\.txt; the files map is keyed by the name as written, so give them different names$/,
    );
  });

  it('checks parameter values against their constraints, and refuses unknown parameters', async () => {
    const big = await validate('-t', 'web.yaml', '--parameter', 'count=50');
    expect(errorLine(big, 'STOKER_PARAMETER_INVALID')).toBe(
      "web.yaml line 14: parameters.count: Parameter 'count' is invalid: 50 is out of range (min: 1, max: 10)",
    );
    const unknown = await validate('-t', 'web.yaml', '--parameter', 'colour=red');
    expect(errorLine(unknown, 'STOKER_PARAMETER_INVALID')).toBe(
      'web.yaml: parameters.colour: The Parameter (colour) was not defined in template.',
    );
  });

  it('reports usage errors with exit code 2', async () => {
    expect(errorLine(await validate(), 'STOKER_CLI_USAGE')).toContain("required option '-t, --template <file>' not specified");
    expect(errorLine(await validate('-t', 'nothere.yaml'), 'STOKER_CLI_USAGE')).toBe('cannot read the template nothere.yaml: no such file');
    expect(errorLine(await validate('-t', 'web.yaml', '--parameter', 'count'), 'STOKER_CLI_USAGE')).toBe(
      '--parameter "count": malformed, use the key=value format',
    );
    expect(errorLine(await validate('-t', 'web.yaml', '-f', 'csv'), 'STOKER_CLI_USAGE')).toContain(
      "option '-f, --format <format>' argument 'csv' is invalid",
    );
    expect(errorLine(await validate('-t', 'web.yaml', '-c', 'Colour'), 'STOKER_CLI_USAGE')).toBe(
      'No recognized column names in ["Colour"]. Recognized columns are ["Description", "Parameters", "ParameterGroups", "Environment"].',
    );
  });
});

describe('orchestration resource type', () => {
  it('lists the types sorted, as a table by default', async () => {
    const r = await cli('orchestration', 'resource', 'type', 'list');
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.slice(0, 3)).toEqual([lines[0], expect.stringMatching(/^\| Resource Type +\|$/), lines[0]]);
    expect(lines[0]).toMatch(/^\+-+\+$/);
    const names = lines.slice(3, -1).map((l) => l.replace(/^\| (\S+) +\|$/, '$1'));
    expect(names).toEqual([...names].sort());
    expect(names).toEqual(expect.arrayContaining(['OS::Heat::None', 'OS::Heat::RandomString', 'OS::Heat::Value']));
  });

  it('filters by name as Heat does (a regular expression matched at the start) and prints each format', async () => {
    const list = (...args: string[]) => cli('orchestration', 'resource', 'type', 'list', '--filter', 'name=OS::Heat::R.*String', ...args);
    expect((await list('-f', 'value')).stdout).toBe('OS::Heat::RandomString\n');
    expect((await list('-f', 'csv')).stdout).toBe('"Resource Type"\n"OS::Heat::RandomString"\n');
    expect((await list('-f', 'yaml')).stdout).toBe('- Resource Type: OS::Heat::RandomString\n');
    expect(json(await list('-f', 'json'))).toEqual([{ 'Resource Type': 'OS::Heat::RandomString' }]);
    const long = json<Record<string, string>[]>(await list('-f', 'json', '--long'));
    expect(Object.keys(long[0]!)).toEqual(['Resource Type', 'Description']);
    const none = await cli('orchestration', 'resource', 'type', 'list', '--filter', 'name=Nothing', '--print-empty');
    expect(none.stdout).toBe('+---------------+\n| Resource Type |\n+---------------+\n+---------------+\n');
    const bad = await cli('orchestration', 'resource', 'type', 'list', '--filter', 'colour=red');
    expect(errorLine(bad, 'STOKER_CLI_USAGE')).toBe('--filter colour: filter by name, version or support_status');
  });

  it('shows a type as YAML by default, fields in Heat’s order', async () => {
    const r = await cli('orchestration', 'resource', 'type', 'show', 'OS::Heat::RandomString');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^resource_type: OS::Heat::RandomString\nproperties:\n/);
    expect(r.stdout).toContain('\nattributes:\n  show:\n    description: Detailed information about resource.\n    type: map\n');
    expect(r.stdout).toMatch(/\nsupport_status:\n {2}message: null\n/);
    const out = json<Record<string, unknown>>(
      await cli('orchestration', 'resource', 'type', 'show', 'OS::Heat::RandomString', '-f', 'json'),
    );
    expect(Object.keys(out)).toEqual(['resource_type', 'properties', 'attributes', 'support_status', 'description']);
    const table = await cli('orchestration', 'resource', 'type', 'show', 'OS::Heat::None', '-f', 'table', '-c', 'resource_type');
    expect(table.stdout).toBe(
      '+---------------+----------------+\n| Field         | Value          |\n+---------------+----------------+\n| resource_type | OS::Heat::None |\n+---------------+----------------+\n',
    );
    const value = await cli('orchestration', 'resource', 'type', 'show', 'OS::Heat::None', '-f', 'value', '-c', 'resource_type');
    expect(value.stdout).toBe('OS::Heat::None\n');
  });

  it('says which type it does not know', async () => {
    const r = await cli('orchestration', 'resource', 'type', 'show', 'OS::Nova::Server');
    expect(r.code).toBe(1);
    expect(errorLine(r, 'STOKER_RESOURCE_TYPE_NOT_FOUND')).toBe('The Resource Type (OS::Nova::Server) could not be found.');
  });
});

describe('--help', () => {
  it('describes each command with examples', async () => {
    const group = await cli('orchestration', '--help');
    expect(group.code).toBe(0);
    expect(group.stdout).toContain('template');
    expect(group.stdout).toContain('resource');
    const v = await cli('orchestration', 'template', 'validate', '--help');
    expect(v.code).toBe(0);
    for (const flag of [
      '-t, --template <file>',
      '-e, --environment <file>',
      '--parameter <key=value>',
      '--show-nested',
      '-f, --format',
      '-c, --column',
    ]) {
      expect(v.stdout).toContain(flag);
    }
    expect(v.stdout).toContain('$ stoker orchestration template validate -t web.yaml');
    const list = await cli('orchestration', 'resource', 'type', 'list', '--help');
    expect(list.stdout).toContain('--filter <key=value>');
    expect(list.stdout).toContain('$ stoker orchestration resource type list');
    const show = await cli('orchestration', 'resource', 'type', 'show', '--help');
    expect(show.stdout).toContain('$ stoker orchestration resource type show OS::Heat::RandomString');
    const root = await cli('--help');
    expect(root.stdout).toMatch(/orchestration +validate Heat templates, list and show\s+resource types/);
  });

  it('prints the group’s help on stderr with exit code 2 when the subcommand is missing', async () => {
    const r = await cli('orchestration', 'resource');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: stoker orchestration resource');
  });
});
