/** Small parts behind the clients-beyond-Node fixes: api-version parsing, audience routing. */
import { apiVersionInUserName, isKnownApiVersion } from '../core/api-version';
import { isEventsAudience } from '../events/entity-address';
import { isEventsAddress } from '../events/events-adapter';

describe('api-version in an MQTT user name (after <host>/<device>/)', () => {
  it.each([
    ['?api-version=2021-04-12&DeviceClientType=x', '2021-04-12'],
    ['api-version=2018-06-30', '2018-06-30'],
    ['?DeviceClientType=x&api-version=2020-09-30', '2020-09-30'],
    ['?api-version=', ''],
    ['', undefined],
    ['?DeviceClientType=x', undefined],
  ])('%j names %j', (options, expected) => {
    expect(apiVersionInUserName(options)).toBe(expected);
  });

  it('knows the SDKs’ versions and nothing else', () => {
    expect(isKnownApiVersion('2021-04-12')).toBe(true);
    expect(isKnownApiVersion('2099-01-01')).toBe(false);
    expect(isKnownApiVersion('')).toBe(false);
    expect(isKnownApiVersion(null)).toBe(false);
  });
});

describe('telling Event Hub-compatible traffic from IoT Hub service traffic', () => {
  it.each([
    ['sb://localhost/local-iothub', true],
    ['sb://localhost:5671/LOCAL-IOTHUB/ConsumerGroups/$Default/Partitions/0', true],
    ['amqps://localhost/local-iothub/$management', true],
    ['localhost:4443', false],
    ['localhost:4443/devices/local-iothub', false],
    ['sb://localhost/other-hub', false],
    ['local-iothub', false],
  ])('audience %j is the endpoint’s: %s', (audience, expected) => {
    expect(isEventsAudience(audience, 'local-iothub')).toBe(expected);
  });

  it.each([
    ['local-iothub/ConsumerGroups/$Default/Partitions/0', true],
    ['$management', true],
    ['local-iothub/$management', true],
    ['$cbs', false],
    ['/messages/devicebound', false],
    ['/messages/serviceBound/feedback', false],
    [undefined, false],
  ])('link address %j is the endpoint’s: %s', (address, expected) => {
    expect(isEventsAddress(address)).toBe(expected);
  });
});
