/**
 * How deeply a parsed JSON value nests. Validation (zod's `z.json()`) and serialisation walk
 * values recursively, so a small body of deeply nested arrays could overflow the stack; bodies are
 * checked here first, without recursion, and refused beyond `maxJsonDepth`.
 */

/** Far beyond any real payload, far below what a recursive walk survives. */
export const maxJsonDepth = 64;

/** True when `value` nests arrays/objects more than `limit` levels deep. */
export function exceedsJsonDepth(value: unknown, limit: number = maxJsonDepth): boolean {
  const pending: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (typeof next.value !== 'object' || next.value === null) continue;
    const depth = next.depth + 1;
    if (depth > limit) return true;
    const children = Array.isArray(next.value) ? next.value : Object.values(next.value);
    for (const child of children) pending.push({ value: child, depth });
  }
  return false;
}
