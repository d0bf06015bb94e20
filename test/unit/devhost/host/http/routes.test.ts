import type { RegisteredFunction } from '../../../../../devhost/host/core-api';
import { compileRoute, RouteTemplateError } from '../../../../../devhost/host/http/routes';
import type { HttpFunction } from '../../../../../devhost/host/http/server';
import {
  lookupRoute,
  sortHttpFunctions,
  toHttpFunction,
} from '../../../../../devhost/host/http/server';

function httpFunction(
  name: string,
  route: string | undefined,
  methods: string[],
  authLevel = 'anonymous',
): HttpFunction {
  const fn: RegisteredFunction = {
    metadata: {
      name,
      bindings: {
        trigger: { type: 'httpTrigger', direction: 'in', route, methods, authLevel },
        $return: { type: 'http', direction: 'out' },
      },
    },
    callback: () => undefined,
  };
  return toHttpFunction(fn, (value) => value.replace('%ROOT%', 'devices'));
}

describe('route templates', () => {
  it('extracts parameters and decodes them', () => {
    const route = compileRoute('devices/{deviceId}/messages/{messageId}');
    expect(route.match('/devices/dev%201/messages/m-1')).toEqual({
      deviceId: 'dev 1',
      messageId: 'm-1',
    });
    expect(route.match('/DEVICES/d/MESSAGES/m')).toEqual({ deviceId: 'd', messageId: 'm' });
    expect(route.match('/devices/d/messages')).toBeUndefined();
    expect(route.match('/devices/d/messages/m/extra')).toBeUndefined();
  });

  it('applies constraints', () => {
    const route = compileRoute('orders/{id:int}/{code:alpha:maxlength(3)}');
    expect(route.match('/orders/42/abc')).toEqual({ id: '42', code: 'abc' });
    expect(route.match('/orders/4x/abc')).toBeUndefined();
    expect(route.match('/orders/42/abcd')).toBeUndefined();
    expect(route.match('/orders/99999999999/abc')).toBeUndefined();
    expect(
      compileRoute('g/{id:guid}').match('/g/3f2504e0-4f89-11d3-9a0c-0305e82c3301'),
    ).toBeDefined();
    expect(compileRoute('g/{id:guid}').match('/g/nope')).toBeUndefined();
    expect(compileRoute('r/{n:range(1,5)}').match('/r/6')).toBeUndefined();
    expect(compileRoute('r/{n:range(1,5)}').match('/r/5')).toEqual({ n: '5' });
    expect(compileRoute('x/{s:regex(^[a-z]{{2}}$)}').match('/x/ab')).toBeDefined();
    expect(compileRoute('b/{flag:bool}').match('/b/TRUE')).toEqual({ flag: 'TRUE' });
  });

  it('supports optional, default and catch-all parameters', () => {
    const optional = compileRoute('items/{name?}');
    expect(optional.match('/items')).toEqual({});
    expect(optional.match('/items/')).toEqual({});
    expect(optional.match('/items/a')).toEqual({ name: 'a' });
    expect(compileRoute('items/{page:int=1}').match('/items')).toEqual({ page: '1' });
    const catchAll = compileRoute('files/{*path}');
    expect(catchAll.match('/files/a/b%20c/d')).toEqual({ path: 'a/b c/d' });
    expect(catchAll.match('/files')).toEqual({});
  });

  it('rejects malformed templates', () => {
    expect(() => compileRoute('a/{id:nosuch}')).toThrow(RouteTemplateError);
    expect(() => compileRoute('a/{id')).toThrow(RouteTemplateError);
    expect(() => compileRoute('a/{*rest}/b')).toThrow(/catch-all/);
  });
});

describe('route lookup', () => {
  const functions = sortHttpFunctions([
    httpFunction('byName', 'items/{name?}', ['GET']),
    httpFunction('catchAll', '{*path}', ['GET']),
    httpFunction('special', 'items/special', ['GET']),
    httpFunction('create', '%ROOT%', ['POST']),
    httpFunction('list', 'devices', ['GET']),
    httpFunction('defaultRoute', undefined, ['GET']),
  ]);

  it('prefers literal segments over parameters and catch-alls', () => {
    const special = lookupRoute(functions, 'GET', '/items/special');
    expect(special.kind === 'found' && special.fn.name).toBe('special');
    const byName = lookupRoute(functions, 'GET', '/items/other');
    expect(byName.kind === 'found' && byName.fn.name).toBe('byName');
    const other = lookupRoute(functions, 'GET', '/x/y');
    expect(other.kind === 'found' && other.fn.name).toBe('catchAll');
  });

  it('resolves %SETTING% in routes and defaults the route to the function name', () => {
    const created = lookupRoute(functions, 'post', '/devices');
    expect(created.kind === 'found' && created.fn.name).toBe('create');
    const byDefault = lookupRoute(functions, 'GET', '/defaultRoute');
    expect(byDefault.kind === 'found' && byDefault.fn.name).toBe('defaultRoute');
  });

  it('answers 405 with the allowed methods when only the method differs, 404 when nothing matches', () => {
    const only = sortHttpFunctions([
      httpFunction('create', 'devices', ['POST']),
      httpFunction('list', 'devices', ['GET']),
    ]);
    expect(lookupRoute(only, 'DELETE', '/devices')).toEqual({
      kind: 'methodNotAllowed',
      allow: ['GET', 'POST'],
    });
    expect(lookupRoute(only, 'GET', '/nothing')).toEqual({ kind: 'notFound' });
  });

  it('refuses auth levels devhost cannot enforce', () => {
    expect(() => httpFunction('x', 'x', ['GET'], 'system')).toThrow(/authLevel "system"/);
  });
});
