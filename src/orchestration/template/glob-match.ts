/**
 * Python's `fnmatch.fnmatchcase` (`*`, `?`, `[seq]`, `[!seq]`), which Heat uses for resource
 * name patterns in an environment's `resources` section. Matched by dynamic programming in
 * O(pattern × name), never through a backtracking regex (`a*a*a*…b` stays cheap).
 */

/**
 * True when `name` matches the glob `pattern` (case-sensitive).
 *
 * @example
 * ```ts
 * globMatch('foo_*', 'foo_step2'); // true
 * globMatch('*ar', 'bar'); // true
 * ```
 */
export function globMatch(pattern: string, name: string): boolean {
  const p = [...pattern];
  const s = [...name];
  // reachable[j]: the first i pattern characters can match the first j name characters
  let reachable = new Array<boolean>(s.length + 1).fill(false);
  reachable[0] = true;
  let i = 0;
  while (i < p.length) {
    const c = p[i]!;
    const next = new Array<boolean>(s.length + 1).fill(false);
    if (c === '*') {
      let any = false;
      for (let j = 0; j <= s.length; j++) {
        any = any || reachable[j]!;
        next[j] = any;
      }
      i++;
    } else {
      let test: (ch: string) => boolean;
      if (c === '?') {
        test = () => true;
        i++;
      } else if (c === '[') {
        const close = p.indexOf(']', i + (p[i + 1] === '!' ? 3 : 2));
        if (close === -1) {
          test = (ch) => ch === '[';
          i++;
        } else {
          const negate = p[i + 1] === '!';
          const body = p.slice(i + (negate ? 2 : 1), close);
          test = (ch) => classMatches(body, ch) !== negate;
          i = close + 1;
        }
      } else {
        test = (ch) => ch === c;
        i++;
      }
      for (let j = 0; j < s.length; j++) if (reachable[j] && test(s[j]!)) next[j + 1] = true;
    }
    reachable = next;
  }
  return reachable[s.length]!;
}

function classMatches(body: string[], ch: string): boolean {
  for (let k = 0; k < body.length; k++) {
    if (body[k + 1] === '-' && k + 2 < body.length) {
      if (ch >= body[k]! && ch <= body[k + 2]!) return true;
      k += 2;
    } else if (body[k] === ch) return true;
  }
  return false;
}
