import { describe, it, expect } from 'vitest';
import { FlowRegistry } from '../../../src/flow/registry.js';
import { compileFlow } from '../../../src/flow/compile.js';
import { linear } from '../../../src/flow/patterns.js';
import { ConflictError, NotFoundError } from '../../../src/errors.js';
import { expectError, t } from './helpers.js';

const order = (version?: string, steps = ['reserve', 'charge']) =>
  linear(
    'order',
    steps.map((s) => t(s)),
    version === undefined ? {} : { version },
  );

describe('FlowRegistry', () => {
  it('compiles a definition and returns the registered flow', () => {
    const flows = new FlowRegistry();
    const compiled = flows.register(order());
    expect(compiled.name).toBe('order');
    expect(compiled.version).toBe('1');
    expect(compiled.graph.atoms.map((a) => a.name)).toEqual(['reserve', 'charge']);
    expect(flows.get('order')).toBe(compiled);
    expect(flows.get('order', '1')).toBe(compiled);
    expect(flows.has('order')).toBe(true);
    expect(flows.has('order', '1')).toBe(true);
    expect(flows.has('order', '2')).toBe(false);
    expect(flows.has('other')).toBe(false);
  });

  it('accepts a compiled flow', () => {
    const flows = new FlowRegistry();
    const compiled = compileFlow(order('3'));
    expect(flows.register(compiled)).toBe(compiled);
    expect(flows.get('order', '3')).toBe(compiled);
  });

  it('treats registering an identical graph again as a no-op', () => {
    const flows = new FlowRegistry();
    const first = flows.register(order('1'));
    expect(flows.register(order('1'))).toBe(first);
    expect(flows.list()).toHaveLength(1);
  });

  it('refuses a different graph under a registered name and version', () => {
    const flows = new FlowRegistry();
    flows.register(order('1'));
    const error = expectError(() => flows.register(order('1', ['reserve', 'charge', 'ship'])), 'STOKER_FLOW_ALREADY_REGISTERED');
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.message).toBe("A different flow 'order' is already registered as version '1'; give the changed flow a new version.");
    expect(flows.get('order').graph.atoms).toHaveLength(2);
  });

  it('returns the latest version by numeric-aware comparison', () => {
    const flows = new FlowRegistry();
    for (const v of ['2', '10', '9', '1.5']) flows.register(order(v));
    expect(flows.get('order').version).toBe('10');
    expect(flows.get('order', '9').version).toBe('9');
    expect(flows.list().map((f) => f.version)).toEqual(['1.5', '2', '9', '10']);
  });

  it('lists flows by name, then version', () => {
    const flows = new FlowRegistry();
    flows.register(linear('ship', [t('s')]));
    flows.register(order('2'));
    flows.register(order('1'));
    expect(flows.list().map((f) => `${f.name}@${f.version}`)).toEqual(['order@1', 'order@2', 'ship@1']);
  });

  it('throws NotFoundError listing the known flows', () => {
    const flows = new FlowRegistry();
    expect(expectError(() => flows.get('order'), 'STOKER_FLOW_NOT_FOUND').message).toBe(
      "No flow 'order' is registered. Registered flows: none.",
    );
    flows.register(order('1'));
    flows.register(linear('ship', [t('s')]));
    const error = expectError(() => flows.get('order', '2'), 'STOKER_FLOW_NOT_FOUND');
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.message).toBe("No flow 'order' version '2' is registered. Registered flows: order@1, ship@1.");
    expect(error.details).toEqual({ flow: 'order', version: '2', known: ['order@1', 'ship@1'] });
  });

  it('cuts a long list of known flows in the message', () => {
    const flows = new FlowRegistry();
    for (let i = 0; i < 25; i++) flows.register(linear(`f${String(i).padStart(2, '0')}`, [t('a')]));
    const error = expectError(() => flows.get('nope'), 'STOKER_FLOW_NOT_FOUND');
    expect(error.message).toContain('f19@1 and 5 more.');
    expect(error.details.known).toHaveLength(25);
  });

  it('rejects what is neither a flow nor a compiled flow, and mismatched compiled flows', () => {
    const flows = new FlowRegistry();
    expectError(() => flows.register(t('a') as never), 'STOKER_FLOW_INVALID');
    const compiled = compileFlow(order());
    expectError(() => flows.register({ ...compiled, version: '2' }), 'STOKER_FLOW_INVALID');
  });
});
