/**
 * Node reads `NODE_EXTRA_CA_CERTS` only at process start, and this machine (like many) already
 * points it at a bundle. Trusting the local IoT Hub's CA therefore means writing a new bundle
 * (whatever was trusted before, plus the CA) and starting the process that needs it with that.
 */
import { readFileSync, writeFileSync, renameSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/** A PEM certificate (OpenSSL's `TRUSTED CERTIFICATE` form too); anything else in a bundle is not read by Node. */
const pemBlock = /-----BEGIN (TRUSTED )?CERTIFICATE-----[\s\S]*?-----END \1?CERTIFICATE-----/g;

/** The certificates of a PEM text, each normalised to `\n` line ends and no trailing space. */
function certificatesOf(text: string): string[] {
  return (text.match(pemBlock) ?? []).map((pem) => pem.replace(/\r\n/g, '\n').trim());
}

function readOrEmpty(file: string | undefined): string {
  if (!file) return '';
  try {
    return readFileSync(file, 'utf8');
  } catch {
    // Node only warns about an unreadable extra-CA file; an unreadable one adds nothing here.
    return '';
  }
}

/**
 * Writes `outFile` = every certificate already trusted through `existing` (if any) + `caFile`;
 * returns `outFile`. `existing` may be `outFile` itself (the user exported the bundle the stack
 * printed): its certificates are kept, not replaced by the CA alone.
 */
export function writeCaBundle(
  caFile: string,
  outFile: string,
  existing = process.env.NODE_EXTRA_CA_CERTS,
): string {
  const certificates: string[] = [];
  const add = (pem: string) => {
    if (!certificates.includes(pem)) certificates.push(pem);
  };
  // Read before the rename below, so `existing === outFile` keeps what the user trusted.
  certificatesOf(readOrEmpty(existing)).forEach(add);
  certificatesOf(readFileSync(caFile, 'utf8')).forEach(add);
  mkdirSync(dirname(outFile), { recursive: true });
  const temp = `${outFile}.${process.pid}.tmp`;
  writeFileSync(temp, `${certificates.join('\n')}\n`);
  renameSync(temp, outFile);
  return outFile;
}

/** True when this process already trusts the CA (it was started with a bundle holding it). */
export function processTrusts(caFile: string): boolean {
  const bundle = process.env.NODE_EXTRA_CA_CERTS;
  if (!bundle) return false;
  try {
    const trusted = certificatesOf(readFileSync(bundle, 'utf8'));
    return certificatesOf(readFileSync(caFile, 'utf8')).every((ca) => trusted.includes(ca));
  } catch {
    return false;
  }
}
