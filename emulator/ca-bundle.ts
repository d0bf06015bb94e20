/**
 * Node reads `NODE_EXTRA_CA_CERTS` only at process start, and this machine (like many) already
 * points it at a bundle. Trusting the local IoT Hub's CA therefore means writing a new bundle
 * (whatever was trusted before, plus the CA) and starting the process that needs it with that.
 */
import { readFileSync, writeFileSync, renameSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/** Writes `outFile` = existing extra CAs (if any) + `caFile`; returns `outFile`. */
export function writeCaBundle(
  caFile: string,
  outFile: string,
  existing = process.env.NODE_EXTRA_CA_CERTS,
): string {
  const ca = readFileSync(caFile, 'utf8').trim();
  let previous = '';
  if (existing && existing !== outFile) {
    try {
      previous = readFileSync(existing, 'utf8').trimEnd();
    } catch {
      // Node only warns about an unreadable extra-CA file; an unreadable one adds nothing here.
    }
  }
  const text = previous.includes(ca)
    ? `${previous}\n`
    : `${previous}${previous ? '\n' : ''}${ca}\n`;
  mkdirSync(dirname(outFile), { recursive: true });
  const temp = `${outFile}.${process.pid}.tmp`;
  writeFileSync(temp, text);
  renameSync(temp, outFile);
  return outFile;
}

/** True when this process already trusts the CA (it was started with a bundle holding it). */
export function processTrusts(caFile: string): boolean {
  const bundle = process.env.NODE_EXTRA_CA_CERTS;
  if (!bundle) return false;
  try {
    return readFileSync(bundle, 'utf8').includes(readFileSync(caFile, 'utf8').trim());
  } catch {
    return false;
  }
}
