/**
 * TLS material for the local IoT Hub: a CA generated on first start and a server certificate it
 * signs (SHA-256, RSA 2048, SANs `localhost` and `127.0.0.1`), kept in `<dataDir>/tls/`. Existing
 * files are reused, so a CA a developer already trusts stays valid across restarts; a server
 * certificate that expired (or was lost) is re-issued from the same CA.
 */
import { X509Certificate } from 'node:crypto';
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

/** Write through a temporary file and rename, so a concurrent reader never sees half a PEM. */
async function writeAtomically(file: string, text: string, mode: number): Promise<void> {
  const temp = `${file}.${process.pid}.${Date.now()}.tmp`;
  await fs.writeFile(temp, text, { mode });
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

function serverCertIsUsable(certPem: string, caPem: string, nowMs: number): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    return (
      cert.checkIssued(ca) &&
      cert.verify(ca.publicKey) &&
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
export async function ensureTlsMaterial(dataDir: string, now = new Date()): Promise<TlsMaterial> {
  const files = tlsFiles(dataDir);
  await fs.mkdir(files.dir, { recursive: true });

  let caCert = await readIfExists(files.caFile);
  let caKey = await readIfExists(files.caKeyFile);
  if (caCert === undefined || caKey === undefined) {
    const ca = await generateCa(now);
    caCert = ca.cert;
    caKey = ca.key;
    await writeAtomically(files.caKeyFile, caKey, 0o600);
    await writeAtomically(files.caFile, caCert, 0o644);
  }

  let cert = await readIfExists(files.certFile);
  let key = await readIfExists(files.keyFile);
  if (cert === undefined || key === undefined || !serverCertIsUsable(cert, caCert, now.getTime())) {
    const server = await generateServer({ cert: caCert, key: caKey }, now);
    cert = server.cert;
    key = server.key;
    await writeAtomically(files.keyFile, key, 0o600);
    await writeAtomically(files.certFile, cert, 0o644);
  }

  return { files, ca: caCert, cert: `${cert.trimEnd()}\n${caCert.trimEnd()}\n`, key };
}
