import { describe, it, expect } from 'vitest';
import { compareVersions } from '../../../src/flow/compare-versions.js';

describe('compareVersions', () => {
  it('compares numeric runs by value', () => {
    expect(['10', '2', '1.10', '1.9', '1.0.0-rc.10', '1.0.0-rc.2', '1.0.0'].sort(compareVersions)).toEqual([
      '1.0.0',
      '1.0.0-rc.2',
      '1.0.0-rc.10',
      '1.9',
      '1.10',
      '2',
      '10',
    ]);
    expect(compareVersions('99999999999999999999', '100000000000000000000')).toBeLessThan(0);
    expect(compareVersions('2.0', '2.0')).toBe(0);
    expect(compareVersions('01', '1')).not.toBe(0);
    expect(compareVersions('b', 'a')).toBeGreaterThan(0);
  });
});
