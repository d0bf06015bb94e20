import {
  buildConnectionString,
  deviceConnectionString,
  parseConnectionString,
} from '../../../lib/connection-string';
import { DeviceService } from '../../../lib/devices/device-service';
import type { RegistryClient } from '../../../lib/iothub/clients';
import { deviceIdPattern, messageIdPattern } from '../../../lib/iothub/ids';

const injection = 'x;HostName=evil:443;DeviceId=sim-1';
const key = Buffer.alloc(32, 1).toString('base64');

describe('buildConnectionString', () => {
  it('joins Key=Value pairs in order and round-trips through the parser', () => {
    const built = deviceConnectionString('hub.example:4443', "g=h'(k)", key);
    expect(built).toBe(`HostName=hub.example:4443;DeviceId=g=h'(k);SharedAccessKey=${key}`);
    expect(parseConnectionString(built)).toEqual({
      HostName: 'hub.example:4443',
      DeviceId: "g=h'(k)",
      SharedAccessKey: key,
    });
  });

  it('refuses a device id that would inject HostName, without echoing the value', () => {
    expect(() => deviceConnectionString('hub.example', injection, key)).toThrow(
      "connection string value for DeviceId is empty or contains ';'",
    );
    expect(() => deviceConnectionString('hub.example', injection, key)).not.toThrow(/evil/);
  });

  it.each([
    ['a ; in any value', { HostName: 'h', SharedAccessKey: 'k;x=y' }, /SharedAccessKey/],
    ['an empty value', { HostName: '' }, /HostName/],
    ['a key with =', { 'Host=Name': 'h' }, /not a plain name/],
    ['a key with ;', { 'a;b': 'h' }, /not a plain name/],
  ])('refuses %s', (_what, parts, message) => {
    expect(() => buildConnectionString(parts)).toThrow(message);
  });
});

describe('id rules', () => {
  it('device ids exclude ; but message ids allow it (as IoT Hub documents)', () => {
    expect(deviceIdPattern.test('a;b')).toBe(false);
    expect(messageIdPattern.test('a;b')).toBe(true);
    expect(deviceIdPattern.test("-:.+%_#*?!(),=@$'")).toBe(true);
    expect(deviceIdPattern.test('x'.repeat(128))).toBe(true);
    expect(deviceIdPattern.test('x'.repeat(129))).toBe(false);
  });
});

describe('DeviceService.create', () => {
  it('refuses an id the connection string builder refuses before the hub changes anything', async () => {
    const calls: string[] = [];
    const registry = {
      create: (device: { deviceId: string }) => {
        calls.push(device.deviceId);
        return Promise.resolve(device);
      },
    } as unknown as RegistryClient;
    const service = new DeviceService(registry, 'hub.example');
    await expect(service.create({ deviceId: injection })).rejects.toThrow(/DeviceId/);
    expect(calls).toEqual([]);
  });
});
