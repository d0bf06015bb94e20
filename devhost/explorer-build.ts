/**
 * Builds the device explorer's static assets (web/explorer → dist/explorer): one ES module
 * bundle with the chart library, one stylesheet, and the page. `npm run build` runs it after
 * `tsc --build`, which type-checks the sources (web/explorer/tsconfig.json); esbuild only bundles.
 * The output names are fixed, so the served file set never changes between builds. (Not
 * dist/web/explorer: tsc emits there the modules that unit tests import, which are not assets.)
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

export async function buildExplorer(root: string): Promise<string> {
  const source = join(root, 'web', 'explorer');
  const outdir = join(root, 'dist', 'explorer');
  mkdirSync(outdir, { recursive: true });
  await build({
    entryPoints: { app: join(source, 'main.ts') },
    outdir,
    bundle: true,
    format: 'esm',
    target: ['es2022', 'chrome111', 'firefox111', 'safari16'],
    minify: true,
    legalComments: 'eof',
    logLevel: 'warning',
  });
  copyFileSync(join(source, 'index.html'), join(outdir, 'index.html'));
  return outdir;
}

if (require.main === module) {
  // dist/devhost → the repository root.
  buildExplorer(join(__dirname, '..', '..')).catch((error: unknown) => {
    console.error(
      `explorer build failed: ${error instanceof Error ? error.message : String(error)}`,
    );
    process.exit(1);
  });
}
