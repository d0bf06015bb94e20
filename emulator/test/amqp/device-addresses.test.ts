/**
 * The pure parts of device AMQP: which device a token resource names, and which device and link
 * kind an attach address names (what link authorization is decided on).
 */
import { deviceIdOfResource } from '../../amqp/device-auth';
import { parseDeviceAddress } from '../../amqp/device-links';

describe('deviceIdOfResource', () => {
  it.each([
    ['localhost%3A4443%2Fdevices%2Fdev-1', 'dev-1'],
    ['localhost:4443/devices/dev-1', 'dev-1'],
    ['hub.azure-devices.net%2Fdevices%2Fa%2520b', 'a b'],
  ])('%s names device %s', (resource, deviceId) => {
    expect(deviceIdOfResource(resource)).toBe(deviceId);
  });

  it.each([
    'localhost:4443',
    'localhost/devices/dev-1/modules/m1',
    'localhost/devices/',
    'localhost%ZZ/devices/x',
  ])('%s names no device', (resource) => {
    expect(deviceIdOfResource(resource)).toBeUndefined();
  });
});

describe('parseDeviceAddress', () => {
  it.each([
    ['/devices/dev-1/messages/events', 'events'],
    ['/devices/dev-1/messages/deviceBound', 'devicebound'],
    ['/devices/dev-1/twin', 'twin'],
    ['/devices/dev-1/methods/devicebound', 'methods'],
    ['/devices/dev-1/modules/m1/messages/events', 'modules'],
    ['/devices/dev-1/files', 'unknown'],
  ])('%s is a %s link of dev-1', (address, kind) => {
    expect(parseDeviceAddress(address)).toEqual({ address, deviceId: 'dev-1', kind });
  });

  it('decodes the device id and leaves service addresses alone', () => {
    expect(parseDeviceAddress('/devices/a%20b/twin')?.deviceId).toBe('a b');
    expect(parseDeviceAddress('/messages/devicebound')).toBeUndefined();
    expect(parseDeviceAddress('$cbs')).toBeUndefined();
    expect(parseDeviceAddress(undefined)).toBeUndefined();
  });
});
