/**
 * `emulator/auth/x509.ts` on real certificates made with `selfsigned`: chains through an
 * intermediate, validity periods, and what a certificateAuthority device needs.
 */
import { X509Certificate } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { generate } from 'selfsigned';
import { DeviceCertificates } from '../../amqp/device-x509';
import { authenticateCertificate, thumbprints, x509AuthMethod } from '../../auth/x509';
import type { EmulatorContext } from '../../context';
import type { DeviceRecord } from '../../core/contracts';

const dayMs = 24 * 60 * 60 * 1000;
const now = Date.now();

interface Pem {
  cert: string;
  key: string;
}

async function cert(
  commonName: string,
  options: { ca?: Pem; isCa?: boolean; from?: number; to?: number } = {},
): Promise<Pem> {
  const result = await generate([{ name: 'commonName', value: commonName }], {
    algorithm: 'sha256',
    keySize: 2048,
    notBeforeDate: new Date(options.from ?? now - dayMs),
    notAfterDate: new Date(options.to ?? now + dayMs),
    ...(options.ca ? { ca: options.ca } : {}),
    extensions: [{ name: 'basicConstraints', cA: options.isCa === true, critical: true }],
  });
  return { cert: result.cert, key: result.private };
}

const x509 = (pem: Pem) => new X509Certificate(pem.cert);

function device(deviceId: string, authentication: DeviceRecord['authentication']): DeviceRecord {
  return {
    deviceId,
    generationId: '1',
    etag: 'MQ==',
    status: 'enabled',
    statusReason: null,
    statusUpdatedTime: new Date(now).toISOString(),
    keys: { primaryKey: '', secondaryKey: '' },
    ...(authentication ? { authentication } : {}),
    createdTime: new Date(now).toISOString(),
  };
}

let root: Pem;
let intermediate: Pem;

beforeAll(async () => {
  root = await cert('root', { isCa: true, to: now + 30 * dayMs });
  intermediate = await cert('intermediate', { ca: root, isCa: true, to: now + 30 * dayMs });
}, 60_000);

describe('certificateAuthority devices', () => {
  const caDevice = device('dev-ca', { type: 'certificateAuthority' });

  it('accept a leaf issued by an intermediate the device sends along', async () => {
    const leaf = await cert('dev-ca', { ca: intermediate });
    const chain = [x509(leaf), x509(intermediate)];
    expect(() =>
      authenticateCertificate({ device: caDevice, chain, trustedCas: [x509(root)], nowMs: now }),
    ).not.toThrow();
  });

  it('refuse the same leaf when the intermediate is missing from the chain', async () => {
    const leaf = await cert('dev-ca', { ca: intermediate });
    expect(() =>
      authenticateCertificate({
        device: caDevice,
        chain: [x509(leaf)],
        trustedCas: [x509(root)],
        nowMs: now,
      }),
    ).toThrow('does not lead to a trusted device CA');
  });

  it('refuse every certificate when the hub trusts no CA', async () => {
    const leaf = await cert('dev-ca', { ca: root });
    expect(() =>
      authenticateCertificate({
        device: caDevice,
        chain: [x509(leaf)],
        trustedCas: [],
        nowMs: now,
      }),
    ).toThrow('--trusted-device-ca');
  });
});

describe('selfSigned devices', () => {
  it('refuse a certificate that is not yet valid', async () => {
    const future = await cert('dev-self', { from: now + dayMs, to: now + 2 * dayMs });
    const [sha1] = thumbprints(x509(future));
    const selfDevice = device('dev-self', {
      type: 'selfSigned',
      primaryThumbprint: sha1 ?? '',
      secondaryThumbprint: null,
    });
    expect(() =>
      authenticateCertificate({
        device: selfDevice,
        chain: [x509(future)],
        trustedCas: [],
        nowMs: now,
      }),
    ).toThrow('not yet valid');
  });

  it('refuse a SAS device whatever it presents', async () => {
    const any = await cert('dev-sas');
    expect(() =>
      authenticateCertificate({
        device: device('dev-sas', undefined),
        chain: [x509(any)],
        trustedCas: [],
        nowMs: now,
      }),
    ).toThrow('SAS');
  });
});

describe('DeviceCertificates (X.509 devices over AMQP, emulator/amqp/device-x509.ts)', () => {
  /** A stand-in for the connection's TLS socket: what `getPeerCertificate(true)` answers. */
  const socketPresenting = (pem?: Pem): Duplex =>
    ({
      getPeerCertificate: () => (pem ? { raw: x509(pem).raw } : {}),
    }) as unknown as Duplex;

  function certificatesFor(records: DeviceRecord[], socket: Duplex): DeviceCertificates {
    const ctx = {
      core: {
        registry: { get: (id: string) => records.find((r) => r.deviceId === id) },
        clock: { now: () => now },
      },
      trustedDeviceCas: [],
    } as unknown as EmulatorContext;
    return new DeviceCertificates(ctx, socket);
  }

  it('admit a registered thumbprint, and remember the x509 auth method for its telemetry', async () => {
    const leaf = await cert('dev-amqp');
    const [sha1 = ''] = thumbprints(x509(leaf));
    const self = device('dev-amqp', {
      type: 'selfSigned',
      primaryThumbprint: sha1,
      secondaryThumbprint: null,
    });
    const certificates = certificatesFor([self], socketPresenting(leaf));
    expect(certificates.refusal('dev-amqp')).toBeUndefined();
    expect(certificates.authMethodOf('dev-amqp')).toBe(x509AuthMethod);
  });

  it('refuse, naming why, a certificate whose thumbprint is not registered', async () => {
    const leaf = await cert('dev-amqp');
    const self = device('dev-amqp', {
      type: 'selfSigned',
      primaryThumbprint: 'AB'.repeat(20),
      secondaryThumbprint: null,
    });
    const certificates = certificatesFor([self], socketPresenting(leaf));
    expect(certificates.refusal('dev-amqp')).toMatch(/thumbprint is not registered/);
    expect(certificates.authMethodOf('dev-amqp')).toBeUndefined();
  });

  it('refuse a disabled device even with the right certificate', async () => {
    const leaf = await cert('dev-off');
    const [sha1 = ''] = thumbprints(x509(leaf));
    const off = {
      ...device('dev-off', {
        type: 'selfSigned',
        primaryThumbprint: sha1,
        secondaryThumbprint: null,
      }),
      status: 'disabled' as const,
    };
    const certificates = certificatesFor([off], socketPresenting(leaf));
    expect(certificates.refusal('dev-off')).toBe('the device is disabled');
  });

  it('give SAS and unknown devices the missing-token answer, certificate or not', async () => {
    const leaf = await cert('dev-sas');
    const certificates = certificatesFor([device('dev-sas', undefined)], socketPresenting(leaf));
    expect(certificates.refusal('dev-sas')).toBe('no valid token for device "dev-sas"');
    expect(certificates.refusal('nobody')).toBe('no valid token for device "nobody"');
  });

  it('refuse an X.509 device on a connection that presented no certificate', () => {
    const self = device('dev-bare', {
      type: 'selfSigned',
      primaryThumbprint: 'AB'.repeat(20),
      secondaryThumbprint: null,
    });
    const certificates = certificatesFor([self], socketPresenting());
    expect(certificates.refusal('dev-bare')).toMatch(/presented no client certificate/);
  });
});
