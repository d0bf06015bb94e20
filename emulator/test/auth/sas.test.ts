import { SharedAccessSignature as CommonSas } from 'azure-iot-common';
import { SharedAccessSignature as DeviceSas } from 'azure-iot-device';
import { hubHostCheck } from '../../auth/hosts';
import { verifyDeviceToken } from '../../auth/sas';

const host = 'localhost:4443';
const keys = { primaryKey: Buffer.alloc(32, 3).toString('base64'), secondaryKey: '' };
const now = Date.now();
const expiry = Math.floor(now / 1000) + 3600;

const namesThisHub = hubHostCheck(host, 'local-iothub');

function verify(token: string, deviceId: string): void {
  verifyDeviceToken(token, { deviceId, keys }, now, namesThisHub);
}

describe('verifyDeviceToken with special characters in the device id', () => {
  it.each([['a+b'], ['c#d'], ['e%f'], ['g=h'], ["i'j(k)"], ['l:m*n?o!p,q@r$s']])(
    'accepts the Node device SDK token for %s (whole resource URL-encoded once)',
    (deviceId) => {
      const token = DeviceSas.create(host, deviceId, keys.primaryKey, expiry).toString();
      expect(() => verify(token, deviceId)).not.toThrow();
    },
  );

  it.each([['a+b'], ['e%f'], ["i'j(k)"]])(
    'accepts a token whose id is encoded before the resource is (the .NET SDK) for %s',
    (deviceId) => {
      const sr = encodeURIComponent(`${host}/devices/${encodeURIComponent(deviceId)}`);
      const token = CommonSas.create(sr, '', keys.primaryKey, expiry).toString();
      expect(() => verify(token, deviceId)).not.toThrow();
    },
  );

  it('says the resource names another device, not that it is malformed, for e%f', () => {
    const token = DeviceSas.create(host, 'other', keys.primaryKey, expiry).toString();
    expect(() => verify(token, 'e%f')).toThrow('token resource does not name this device');
    const percent = DeviceSas.create(host, 'x%zz', keys.primaryKey, expiry).toString();
    expect(() => verify(percent, 'e%f')).toThrow('token resource does not name this device');
  });
});

describe('verifyDeviceToken and the hub a token names', () => {
  it.each([
    ['localhost:4443'],
    ['127.0.0.1:8883'],
    ['LOCALHOST'],
    ['local-iothub.azure-devices.net'],
  ])('accepts a token whose resource names this hub as %s', (tokenHost) => {
    const token = DeviceSas.create(tokenHost, 'd1', keys.primaryKey, expiry).toString();
    expect(() => verify(token, 'd1')).not.toThrow();
  });

  it.each([['other-hub.azure-devices.net'], ['evil.example:443']])(
    'refuses a token signed with the right key for the same device on %s',
    (tokenHost) => {
      const token = DeviceSas.create(tokenHost, 'd1', keys.primaryKey, expiry).toString();
      expect(() => verify(token, 'd1')).toThrow(/names another hub/);
    },
  );
});
