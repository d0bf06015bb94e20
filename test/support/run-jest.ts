/**
 * `npm test` entry point. Node reads `NODE_EXTRA_CA_CERTS` only when a process starts, and the
 * official SDKs (the AMQP service client in particular) accept no `ca` option, so the test CA must
 * be trusted before Jest starts: this prepares one CA in `.local/test/tls`, writes a bundle of any
 * CAs already configured plus that CA, and runs Jest with it. `startEmulator` copies the same CA
 * into every emulator's data folder, so every emulator in the run is trusted.
 *
 * Usage: `node dist/test/support/run-jest.js [jest args...]`; exits with Jest's exit code.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ensureTlsMaterial, writeCaBundle } from '@iot-hub-functions/local-iothub';
import { repoRoot } from './emulator';

/** Returns the bundle path and the test TLS directory. */
export async function prepareTestTrust(root: string): Promise<{ bundle: string; tlsDir: string }> {
  const testDir = path.join(root, '.local', 'test');
  const material = await ensureTlsMaterial(testDir);
  const bundle = writeCaBundle(material.files.caFile, path.join(testDir, 'ca-bundle.pem'));
  return { bundle, tlsDir: material.files.dir };
}

async function main(): Promise<void> {
  const root = repoRoot();
  const { bundle, tlsDir } = await prepareTestTrust(root);
  const jest = path.join(root, 'node_modules', 'jest', 'bin', 'jest.js');
  const child = spawn(process.execPath, [jest, ...process.argv.slice(2)], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, NODE_EXTRA_CA_CERTS: bundle, TEST_TLS_DIR: tlsDir },
  });
  const forward = (signal: NodeJS.Signals) => () => {
    child.kill(signal);
  };
  process.on('SIGINT', forward('SIGINT'));
  process.on('SIGTERM', forward('SIGTERM'));
  child.on('exit', (code, signal) => {
    process.exit(code ?? (signal ? 1 : 0));
  });
  child.on('error', (error) => {
    console.error(`run-jest: cannot start Jest: ${error.message}`);
    process.exit(1);
  });
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(`run-jest: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
