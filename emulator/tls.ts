/**
 * TLS material for the local IoT Hub: a CA generated on first start and a server certificate it
 * signs (SHA-256, RSA 2048, SANs `localhost` and `127.0.0.1`), kept in `<dataDir>/tls/`. Existing
 * files are reused, so a CA a developer already trusts stays valid across restarts; a server
 * certificate that expired (or was lost) is re-issued from the same CA.
 */
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { generate } from 'selfsigned';

export interface TlsFiles {
  dir: string;
  caFile: string;
  caKeyFile: string;
  certFile: string;
  keyFile: string;
}

export interface TlsMaterial {
  files: TlsFiles;
  /** PEM text of the CA certificate (clients trust this). */
  ca: string;
  /** PEM text of the server certificate followed by the CA (a complete chain). */
  cert: string;
  key: string;
}

const dayMs = 24 * 60 * 60 * 1000;
const caValidityMs = 10 * 365 * dayMs;
const serverValidityMs = 365 * dayMs;
/** Renew the server certificate this long before it expires, so a running hub never serves a dead one. */
const serverRenewMarginMs = 7 * dayMs;

export function tlsFiles(dataDir: string): TlsFiles {
  const dir = path.resolve(dataDir, 'tls');
  return {
    dir,
    caFile: path.join(dir, 'ca.pem'),
    caKeyFile: path.join(dir, 'ca-key.pem'),
    certFile: path.join(dir, 'server.pem'),
    keyFile: path.join(dir, 'server-key.pem'),
  };
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT')) return undefined;
    throw error;
  }
}

function isErrnoCode(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

/**
 * Write through a temporary file and rename, so a concurrent reader never sees half a PEM. A PEM
 * ends with a newline (selfsigned's do not), so `cat ca.pem >> bundle.pem` stays valid.
 */
async function writeAtomically(file: string, text: string, mode: number): Promise<void> {
  const temp = `${file}.${process.pid}.${Date.now()}.tmp`;
  await fs.writeFile(temp, text.endsWith('\n') ? text : `${text}\n`, { mode });
  await fs.rename(temp, file);
}

async function generateCa(now: Date): Promise<{ cert: string; key: string }> {
  const result = await generate([{ name: 'commonName', value: 'Local IoT Hub Development CA' }], {
    algorithm: 'sha256',
    keySize: 2048,
    notBeforeDate: new Date(now.getTime() - dayMs),
    notAfterDate: new Date(now.getTime() + caValidityMs),
    extensions: [
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      {
        name: 'keyUsage',
        keyCertSign: true,
        cRLSign: true,
        digitalSignature: true,
        critical: true,
      },
    ],
  });
  return { cert: result.cert, key: result.private };
}

async function generateServer(
  ca: { cert: string; key: string },
  now: Date,
): Promise<{ cert: string; key: string }> {
  const result = await generate([{ name: 'commonName', value: 'localhost' }], {
    algorithm: 'sha256',
    keySize: 2048,
    // Backdated a little so clocks that lag behind still accept it.
    notBeforeDate: new Date(now.getTime() - dayMs),
    notAfterDate: new Date(now.getTime() + serverValidityMs),
    ca,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  return { cert: result.cert, key: result.private };
}

function serverCertIsUsable(
  certPem: string,
  keyPem: string,
  caPem: string,
  nowMs: number,
): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    const publicOfKey = createPublicKey(createPrivateKey(keyPem)).export({
      type: 'spki',
      format: 'der',
    });
    return (
      cert.checkIssued(ca) &&
      cert.verify(ca.publicKey) &&
      cert.publicKey.export({ type: 'spki', format: 'der' }).equals(publicOfKey) &&
      Date.parse(cert.validTo) - serverRenewMarginMs > nowMs
    );
  } catch {
    return false;
  }
}

/**
 * Loads the CA and server certificate from `<dataDir>/tls/`, generating whatever is missing.
 * Throws (naming the directory, never key material) when the folder cannot be read or written.
 */
async function readMaterial(
  files: TlsFiles,
): Promise<{ caCert?: string; caKey?: string; cert?: string; key?: string }> {
  const [caCert, caKey, cert, key] = await Promise.all([
    readIfExists(files.caFile),
    readIfExists(files.caKeyFile),
    readIfExists(files.certFile),
    readIfExists(files.keyFile),
  ]);
  return {
    ...(caCert !== undefined ? { caCert } : {}),
    ...(caKey !== undefined ? { caKey } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
  };
}

function complete(
  material: { caCert?: string; caKey?: string; cert?: string; key?: string },
  nowMs: number,
): material is { caCert: string; caKey: string; cert: string; key: string } {
  const { caCert, caKey, cert, key } = material;
  return (
    caCert !== undefined &&
    caKey !== undefined &&
    cert !== undefined &&
    key !== undefined &&
    serverCertIsUsable(cert, key, caCert, nowMs)
  );
}

const lockStaleMs = 60_000;
const lockWaitMs = 60_000;

/**
 * Runs `fn` holding `<dir>/.lock` (exclusive create), so two processes starting on the same
 * folder (parallel test runners, say) never interleave a CA and a key from different runs.
 * A lock older than a minute is taken to be left over from a crash and removed.
 */
async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = path.join(dir, '.lock');
  const deadline = Date.now() + lockWaitMs;
  for (;;) {
    try {
      const handle = await fs.open(lock, 'wx');
      await handle.close();
      break;
    } catch (error) {
      if (!isErrnoCode(error, 'EEXIST')) throw error;
      const stat = await fs.stat(lock).catch(() => undefined);
      if (stat && Date.now() - stat.mtimeMs > lockStaleMs) {
        await fs.rm(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`${lock} is held by another process`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  try {
    return await fn();
  } finally {
    await fs.rm(lock, { force: true });
  }
}

/**
 * Loads the CA and server certificate from `<dataDir>/tls/`, generating whatever is missing.
 * Throws (naming the directory, never key material) when the folder cannot be read or written.
 */
export async function ensureTlsMaterial(dataDir: string, now = new Date()): Promise<TlsMaterial> {
  const files = tlsFiles(dataDir);
  await fs.mkdir(files.dir, { recursive: true });
  const toMaterial = (m: { caCert: string; cert: string; key: string }): TlsMaterial => ({
    files,
    ca: m.caCert,
    cert: `${m.cert.trimEnd()}\n${m.caCert.trimEnd()}\n`,
    key: m.key,
  });

  const existing = await readMaterial(files);
  if (complete(existing, now.getTime())) return toMaterial(existing);

  return withLock(files.dir, async () => {
    // Another process may have finished while we waited for the lock.
    const current = await readMaterial(files);
    if (complete(current, now.getTime())) return toMaterial(current);
    let { caCert, caKey } = current;
    if (caCert === undefined || caKey === undefined) {
      const ca = await generateCa(now);
      caCert = ca.cert;
      caKey = ca.key;
      await writeAtomically(files.caKeyFile, caKey, 0o600);
      await writeAtomically(files.caFile, caCert, 0o644);
    }
    const server = await generateServer({ cert: caCert, key: caKey }, now);
    await writeAtomically(files.keyFile, server.key, 0o600);
    await writeAtomically(files.certFile, server.cert, 0o644);
    return toMaterial({ caCert, cert: server.cert, key: server.key });
  });
}
