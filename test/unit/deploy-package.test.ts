/**
 * What `func azure functionapp publish` (and azd) would upload: every file `.funcignore` lets
 * through. It must carry the compiled functions and simulator and nothing of the local IoT Hub,
 * the local host, tests, sources or infra. `npm test` builds first, so dist/ is current.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import ignore from 'ignore';

const root = join(__dirname, '..', '..');
/** Not walked: dependencies are installed per deployment, and these are never in a clone. */
const skip = new Set(['node_modules', '.git', '.local', 'coverage']);

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (skip.has(entry.name)) return [];
    const path = join(dir, entry.name);
    return entry.isDirectory() ? walk(path) : [relative(root, path).split(sep).join('/')];
  });
}

function deployedFiles(): string[] {
  const rules = ignore().add(readFileSync(join(root, '.funcignore'), 'utf8'));
  return walk(root).filter((file) => !rules.ignores(file));
}

describe('the deployed package (.funcignore)', () => {
  const files = deployedFiles();

  it('has the built app to deploy', () => {
    expect(existsSync(join(root, 'dist', 'functions'))).toBe(true);
  });

  it('contains host.json, package.json and the compiled functions, simulator and lib', () => {
    expect(files).toContain('host.json');
    expect(files).toContain('package.json');
    const compiled = (dir: string) =>
      files.filter((f) => f.startsWith(`dist/${dir}/`) && f.endsWith('.js'));
    expect(compiled('functions').length).toBeGreaterThan(0);
    expect(compiled('simulator').length).toBeGreaterThan(0);
    expect(compiled('lib').length).toBeGreaterThan(0);
    // Every entry point that package.json `main` globs is in the package.
    const onDisk = (dir: string) =>
      readdirSync(join(root, 'dist', dir))
        .filter((f) => f.endsWith('.js'))
        .map((f) => `dist/${dir}/${f}`);
    for (const entry of [...onDisk('functions'), ...onDisk('simulator')]) {
      expect(files).toContain(entry);
    }
  });

  it('contains the built device explorer (page, script, stylesheet)', () => {
    for (const name of ['index.html', 'app.js', 'app.css']) {
      expect(files).toContain(`dist/explorer/${name}`);
    }
  });

  it('leaves out the emulator, devhost, tests, benchmarks, examples, sources, infra and local settings', () => {
    const forbidden = files.filter(
      (f) =>
        /^(dist\/)?(emulator|devhost|test|bench|infra|examples|simulator\/cli|web)\//.test(f) ||
        /^(functions|simulator|lib|web)\//.test(f) ||
        (f.endsWith('.ts') && !f.endsWith('.d.ts')) ||
        f.endsWith('.map') ||
        f === 'local.settings.json' ||
        f.startsWith('.ci/'),
    );
    expect(forbidden).toEqual([]);
  });
});
