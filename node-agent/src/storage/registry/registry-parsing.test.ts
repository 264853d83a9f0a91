import { describe, expect, it } from 'vitest';
import { rejectionOf } from '@cryo/test';
import { StoreError } from '../checkpoint-store.ts';
import { parseAuthChallenge } from './auth-challenge.ts';
import { HttpTransport } from './http-transport.ts';
import { RegistryAuth } from './registry-auth.ts';
import { credentialsFor } from './docker-config.ts';
import { checkpointTag, parseRepository } from './image-reference.ts';

describe('parseAuthChallenge', () => {
  it('reads a Bearer challenge whose scope has commas inside its quotes', () => {
    expect(parseAuthChallenge('Bearer realm="http://127.0.0.1:5001/token",service="registry",scope="repository:a/b:pull,push"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'http://127.0.0.1:5001/token', service: 'registry', scope: 'repository:a/b:pull,push' },
    });
  });

  it('reads Basic, unquoted values, escapes and odd spacing', () => {
    expect(parseAuthChallenge('Basic realm="Registry Realm"')).toEqual({ scheme: 'basic', params: { realm: 'Registry Realm' } });
    expect(parseAuthChallenge('Bearer  realm = "x\\"y" , error=insufficient_scope')).toEqual({ scheme: 'bearer', params: { realm: 'x"y', error: 'insufficient_scope' } });
    expect(parseAuthChallenge(undefined)).toBeUndefined();
  });
});

describe('credentialsFor', () => {
  const auth = (s: string) => Buffer.from(s).toString('base64');

  it('finds the entry whatever form its key takes, and decodes auth with colons in the password', () => {
    const config = { auths: { 'https://127.0.0.1:5000/v1/': { auth: auth('robot:pa:ss') }, '127.0.0.1:6000': { username: 'u', password: 'p' } } };
    expect(credentialsFor(config, '127.0.0.1:5000')).toEqual({ username: 'robot', password: 'pa:ss' });
    expect(credentialsFor(JSON.stringify(config), '127.0.0.1:6000')).toEqual({ username: 'u', password: 'p' });
    expect(credentialsFor(config, '127.0.0.1:7000')).toBeUndefined();
  });

  it('says what is wrong with a config it cannot use', () => {
    expect(() => credentialsFor('{nope', '127.0.0.1:5000', 'secret cryo/push')).toThrow(/secret cryo\/push is not JSON/);
    expect(() => credentialsFor({ registries: {} }, '127.0.0.1:5000')).toThrow(/no "auths" object/);
    expect(() => credentialsFor({ auths: { '127.0.0.1:5000': { auth: auth('nocolon') } } }, '127.0.0.1:5000')).toThrow(/neither "auth" .* nor "username" and "password"/);
  });
});

describe('parseRepository', () => {
  it('splits host and path', () => {
    expect(parseRepository('127.0.0.1:5000/checkpoints/orders-api')).toEqual({ registry: '127.0.0.1:5000', name: 'checkpoints/orders-api' });
    expect(parseRepository('localhost/a__b.c-d')).toEqual({ registry: 'localhost', name: 'a__b.c-d' });
  });

  it.each([
    ['checkpoints/app', /is not a registry host/],
    ['app', /names no registry host/],
    ['127.0.0.1:5000/app:v1', /must not carry a tag/],
    ['127.0.0.1:5000/app@sha256:00', /must not carry a digest/],
    ['http://127.0.0.1:5000/app', /URL scheme/],
    ['127.0.0.1:5000/App', /lowercase/],
  ])('refuses %s', (repository, message) => {
    expect(() => parseRepository(repository)).toThrow(message);
  });
});

describe('checkpointTag', () => {
  it('is namespace_checkpoint_container_uid8', () => {
    expect(checkpointTag({ namespace: 'shop', checkpointName: 'orders.warm', checkpointUid: '8f65226e-0a1b-4c2d-9e8f-000000000000', containerName: 'app' })).toBe('shop_orders.warm_app_8f65226e');
  });

  it('stays within 128 characters and unique when the names are long', () => {
    const long = (n: string) => ({ namespace: 'ns', checkpointName: 'x'.repeat(200) + n, checkpointUid: 'abcdef01-2345', containerName: 'app' });
    const a = checkpointTag(long('a'));
    const b = checkpointTag(long('b'));
    expect(a.length).toBeLessThanOrEqual(128);
    expect(a).toMatch(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/);
    expect(a).not.toBe(b);
    expect(a.endsWith('_abcdef01')).toBe(true);
  });
});

describe('RegistryAuth token realms', () => {
  const challenge = { scheme: 'bearer' as const, params: { realm: 'http://auth.example/token', service: 'registry' } };
  const credentials = { username: 'robot', password: 'secret' };

  it('refuses a realm over plain HTTP unless the registry is marked insecure: the credentials would travel in the clear', async () => {
    const auth = new RegistryAuth({ registry: 'registry.example', credentials, transport: new HttpTransport({ timeoutMs: 1_000 }) });
    const refused = await rejectionOf(auth.accept(challenge, 'repository:a/b:pull,push'), StoreError);
    expect(refused).toMatchObject({ retriable: false, blocker: 'rejected', message: expect.stringMatching(/token realm over plain HTTP \(http:\/\/auth\.example\).*set --registry-insecure/) });
  });

  it('takes it for an insecure registry (it then asks that realm for a token)', async () => {
    const auth = new RegistryAuth({ registry: 'registry.example', credentials, transport: new HttpTransport({ timeoutMs: 1_000 }), allowPlainHttpRealm: true });
    // 127.0.0.1:9 (discard) refuses: the realm was accepted and dialled, not refused as insecure.
    const failed = await rejectionOf(auth.accept({ ...challenge, params: { ...challenge.params, realm: 'http://127.0.0.1:9/token' } }, 'repository:a/b:pull'), StoreError);
    expect(failed.message).toMatch(/cannot reach the token service http:\/\/127\.0\.0\.1:9/);
    // A network failure may pass: nothing stands in the way.
    expect(failed).toMatchObject({ retriable: true, blocker: undefined });
  });

  it('never names the push secret\'s user in a refusal (the message reaches the Checkpoint status)', async () => {
    const auth = new RegistryAuth({ registry: 'registry.example', credentials, transport: new HttpTransport({ timeoutMs: 1_000 }) });
    await auth.accept({ scheme: 'basic', params: {} }, 'repository:a/b:pull');
    expect(auth.describeRefusal()).not.toContain('robot');
  });
});
