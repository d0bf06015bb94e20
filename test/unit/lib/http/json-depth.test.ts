import { exceedsJsonDepth, maxJsonDepth } from '../../../../lib/http/json-depth';

function nestedArrays(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

describe('exceedsJsonDepth', () => {
  it('counts each array or object level; scalars have depth 0', () => {
    expect(exceedsJsonDepth('text', 0)).toBe(false);
    expect(exceedsJsonDepth([], 0)).toBe(true);
    expect(exceedsJsonDepth({ a: { b: [1] } }, 3)).toBe(false);
    expect(exceedsJsonDepth({ a: { b: [1] } }, 2)).toBe(true);
  });

  it('allows exactly maxJsonDepth levels and refuses one more', () => {
    expect(exceedsJsonDepth(nestedArrays(maxJsonDepth))).toBe(false);
    expect(exceedsJsonDepth(nestedArrays(maxJsonDepth + 1))).toBe(true);
  });

  it('walks a value far deeper than the call stack allows without overflowing', () => {
    expect(exceedsJsonDepth(nestedArrays(200_000))).toBe(true);
  });

  it('finds a deep branch next to shallow siblings', () => {
    expect(exceedsJsonDepth({ shallow: 1, list: [1, 2, { deep: nestedArrays(70) }] })).toBe(true);
  });
});
