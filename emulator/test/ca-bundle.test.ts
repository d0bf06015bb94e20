import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeCaBundle } from '../ca-bundle';

const pem = (body: string) => `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----`;
const corporate = pem('Y29ycG9yYXRlLWNh');
const other = pem('b3RoZXItY2E=');
const local = pem('bG9jYWwtaHViLWNh');

describe('the CA bundle for NODE_EXTRA_CA_CERTS', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ca-bundle-'));
    writeFileSync(join(dir, 'ca.pem'), local);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps every certificate of the bundle already configured, then adds the CA', () => {
    writeFileSync(join(dir, 'corp.pem'), `${corporate}\n${other}\n`);
    const out = writeCaBundle(join(dir, 'ca.pem'), join(dir, 'bundle.pem'), join(dir, 'corp.pem'));
    expect(readFileSync(out, 'utf8')).toBe(`${corporate}\n${other}\n${local}\n`);
  });

  it('keeps what the user trusted when the variable already points at the bundle', () => {
    const bundle = join(dir, 'bundle.pem');
    writeFileSync(join(dir, 'corp.pem'), `${corporate}\n`);
    writeCaBundle(join(dir, 'ca.pem'), bundle, join(dir, 'corp.pem'));
    // The user exported the printed bundle; the next start writes it again.
    writeCaBundle(join(dir, 'ca.pem'), bundle, bundle);
    expect(readFileSync(bundle, 'utf8')).toBe(`${corporate}\n${local}\n`);
  });

  it('writes the CA alone when nothing was configured', () => {
    const out = writeCaBundle(join(dir, 'ca.pem'), join(dir, 'bundle.pem'), '');
    expect(readFileSync(out, 'utf8')).toBe(`${local}\n`);
  });

  it('generates a ca.pem that ends with a newline', () => {
    // In its own process: Jest's realm breaks the `instanceof Error` checks of fs errors in tls.ts.
    const script = `require(${JSON.stringify(join(__dirname, '..', 'dist', 'tls.js'))}).ensureTlsMaterial(${JSON.stringify(dir)})`;
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(readFileSync(join(dir, 'tls', 'ca.pem'), 'utf8')).toMatch(
      /-----END CERTIFICATE-----\n$/,
    );
  });
});
