/**
 * Orders flow versions the way people read them: `2` before `10`, `1.9` before `1.10`,
 * `1.0.0-rc.2` before `1.0.0-rc.10`. The registry uses it to pick a flow's latest version.
 */

/**
 * Compares two version strings, numeric runs by value and everything else by character
 * code. Returns a negative number, 0 or a positive number, like any sort comparator.
 * Numbers are compared without converting them (`99999999999999999999` is fine).
 * This is not semver: a longer version that extends a shorter one sorts after it, so
 * `1.0.0-rc.1` comes after `1.0.0`.
 *
 * @example
 * ```ts
 * ['10', '2', '1.10', '1.9'].sort(compareVersions); // ['1.9', '1.10', '2', '10']
 * ```
 */
export function compareVersions(a: string, b: string): number {
  const left = a.match(/\d+|\D+/g) ?? [];
  const right = b.match(/\d+|\D+/g) ?? [];
  const n = Math.min(left.length, right.length);
  for (let i = 0; i < n; i++) {
    const x = left[i] as string;
    const y = right[i] as string;
    if (x === y) continue;
    const xNumeric = isDigit(x);
    const yNumeric = isDigit(y);
    if (xNumeric && yNumeric) {
      const xs = x.replace(/^0+(?=\d)/, '');
      const ys = y.replace(/^0+(?=\d)/, '');
      if (xs.length !== ys.length) return xs.length - ys.length;
      if (xs !== ys) return xs < ys ? -1 : 1;
      // Same number written differently ("01" vs "1"): fall through to the raw text.
    }
    return x < y ? -1 : 1;
  }
  if (left.length !== right.length) return left.length - right.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

function isDigit(run: string): boolean {
  const c = run.charCodeAt(0);
  return c >= 48 && c <= 57;
}
