/**
 * X.509 device authentication for every TLS surface. The listeners ask for a client certificate
 * without requiring one (`requestCert`, `rejectUnauthorized: false`), so SAS devices connect as
 * before; the adapters then decide per device with `authenticateCertificate`:
 * - `selfSigned`: the certificate's SHA-1 or SHA-256 thumbprint is one the registry holds;
 * - `certificateAuthority`: the chain the device sent leads to a CA the hub was told to trust
 *   (`--trusted-device-ca`, standing in for a verified CA certificate) and the subject's common
 *   name is the device id.
 * Either way the certificate must be within its validity period. Errors never carry key material.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { DeviceRecord } from '../core/contracts';
import { HubError } from '../core/contracts';

/** `iothub-connection-auth-method` of telemetry from a certificate-authenticated device. */
export const x509AuthMethod =
  '{"scope":"device","type":"x509","issuer":"iothub","acceptingIpFilterRule":null}';

/** How many issuers a chain may climb before it is refused (IoT Hub allows a few intermediates). */
const maxChainDepth = 8;

interface PeerCertificateNode {
  raw?: Buffer;
  issuerCertificate?: PeerCertificateNode;
}

/**
 * The certificates a TLS peer presented, leaf first, or undefined when it sent none (or the
 * stream is not TLS). Works on the socket an adapter was handed.
 */
export function presentedChain(socket: unknown): X509Certificate[] | undefined {
  const tlsSocket = socket as { getPeerCertificate?: (detailed: boolean) => PeerCertificateNode };
  if (typeof tlsSocket.getPeerCertificate !== 'function') return undefined;
  const chain: X509Certificate[] = [];
  let node: PeerCertificateNode | undefined = tlsSocket.getPeerCertificate(true);
  const seen = new Set<PeerCertificateNode>();
  while (node?.raw && !seen.has(node) && chain.length < maxChainDepth) {
    seen.add(node);
    chain.push(new X509Certificate(node.raw));
    node = node.issuerCertificate;
  }
  return chain.length > 0 ? chain : undefined;
}

/** Upper-case hex SHA-1 and SHA-256 thumbprints of a certificate, as the registry stores them. */
export function thumbprints(cert: X509Certificate): string[] {
  return ['sha1', 'sha256'].map((algorithm) =>
    createHash(algorithm).update(cert.raw).digest('hex').toUpperCase(),
  );
}

function unauthorized(message: string): HubError {
  return new HubError('Unauthorized', message);
}

function assertValidAt(cert: X509Certificate, nowMs: number, what: string): void {
  if (Date.parse(cert.validFrom) > nowMs) throw unauthorized(`${what} is not yet valid`);
  if (Date.parse(cert.validTo) < nowMs) throw unauthorized(`${what} has expired`);
}

/** The subject's common name (the last CN if there are several). */
export function commonName(cert: X509Certificate): string | undefined {
  const names = cert.subject
    .split('\n')
    .filter((line) => line.startsWith('CN='))
    .map((line) => line.slice(3));
  return names[names.length - 1];
}

function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

/**
 * Climbs from the leaf through the certificates the device sent to a trusted CA, checking every
 * signature and validity period on the way; intermediates must be CAs.
 */
function assertChainTrusted(
  chain: readonly X509Certificate[],
  trusted: readonly X509Certificate[],
  nowMs: number,
): void {
  if (trusted.length === 0) {
    throw unauthorized('the hub trusts no device CA (start it with --trusted-device-ca)');
  }
  let current = chain[0];
  for (let depth = 0; current && depth < maxChainDepth; depth += 1) {
    const cert: X509Certificate = current;
    const anchor = trusted.find((ca) => issuedBy(cert, ca));
    if (anchor) {
      assertValidAt(anchor, nowMs, 'the trusted CA certificate');
      return;
    }
    const next = chain.find((c) => c !== cert && c.ca && issuedBy(cert, c));
    if (next) assertValidAt(next, nowMs, 'an intermediate certificate');
    current = next;
  }
  throw unauthorized('the certificate chain does not lead to a trusted device CA');
}

export interface CertificateCheck {
  device: DeviceRecord;
  /** What the device presented, leaf first (from `presentedChain`). */
  chain: readonly X509Certificate[] | undefined;
  trustedCas: readonly X509Certificate[];
  nowMs: number;
}

/**
 * Throws Unauthorized unless the presented certificate authenticates `device` (an X.509 device);
 * returns the `iothub-connection-auth-method` for its telemetry.
 */
export function authenticateCertificate({
  device,
  chain,
  trustedCas,
  nowMs,
}: CertificateCheck): string {
  const auth = device.authentication;
  if (!auth) throw unauthorized('the device uses SAS authentication, not a certificate');
  const leaf = chain?.[0];
  if (!leaf) throw unauthorized('the device presented no client certificate');
  assertValidAt(leaf, nowMs, 'the client certificate');
  if (auth.type === 'selfSigned') {
    const registered = [auth.primaryThumbprint, auth.secondaryThumbprint];
    if (!thumbprints(leaf).some((t) => registered.includes(t))) {
      throw unauthorized("the certificate's thumbprint is not registered for this device");
    }
    return x509AuthMethod;
  }
  if (commonName(leaf) !== device.deviceId) {
    throw unauthorized("the certificate's subject common name is not the device id");
  }
  assertChainTrusted(chain, trustedCas, nowMs);
  return x509AuthMethod;
}

/**
 * Reads `--trusted-device-ca` files (PEM; a file may hold several certificates). Throws naming
 * the file when one is unreadable or holds no certificate.
 */
export function loadTrustedCas(files: readonly string[]): X509Certificate[] {
  const pemBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
  return files.flatMap((file) => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new Error(`trusted device CA ${file} cannot be read (${code})`);
    }
    const blocks = text.match(pemBlock) ?? [];
    if (blocks.length === 0) throw new Error(`trusted device CA ${file} holds no PEM certificate`);
    try {
      return blocks.map((block) => new X509Certificate(block));
    } catch {
      throw new Error(`trusted device CA ${file} holds a certificate that cannot be parsed`);
    }
  });
}
