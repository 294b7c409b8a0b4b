// panva's oidc-provider (an OpenID Certified authorization server) as the identity provider of
// the interop tests: listens on 127.0.0.1 (port 0 unless `port` is given), then prints one line,
// {"issuer": "http://127.0.0.1:PORT"}, on stdout. Exits when stdin closes.
//
// Configuration: one JSON object, the first argument or $OIDC_PROVIDER_CONFIG:
//   clients           client_credentials clients, each {client_id, client_secret?,
//                     token_endpoint_auth_method? ("client_secret_basic" | "client_secret_post" |
//                     "private_key_jwt"), jwks? (public keys for private_key_jwt), scope?, ...};
//                     two keys are ours, not client metadata: access_token_alg (this client's
//                     access tokens, overriding the global one) and access_token_format
//                     ("jwt", the default, or "opaque": introspect them); any other client
//                     metadata is passed through
//   scopes            the scopes resource servers accept (default: the sample's three)
//   access_token_alg  RS256 (default), ES256 or EdDSA: the key JWT access tokens are signed with
//   access_token_ttl  seconds (default 600)
//
// Every `resource` (RFC 8707) is accepted and gets access tokens (JWT unless the client asks for
// opaque ones) with that audience. The
// signing keys (RS256, ES256, EdDSA) are generated at start; the JWKS at /jwks publishes their
// public halves.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const config = JSON.parse(process.argv[2] ?? process.env.OIDC_PROVIDER_CONFIG ?? '{}');
const scopes = config.scopes ?? ['orders.read', 'products.read', 'customers.read'];
const accessTokenAlg = config.access_token_alg ?? 'RS256';
const accessTokenTTL = config.access_token_ttl ?? 600;

const tokenOptions = new Map();
const clients = (config.clients ?? []).map(({ access_token_alg, access_token_format, ...client }) => {
  tokenOptions.set(client.client_id, { alg: access_token_alg, format: access_token_format });
  return {
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    ...client,
  };
});

function signingKey(type, options, alg, kid) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid };
}

const keys = [
  signingKey('rsa', { modulusLength: 2048 }, 'RS256', 'rs256-1'),
  signingKey('ec', { namedCurve: 'P-256' }, 'ES256', 'es256-1'),
  signingKey('ed25519', {}, 'EdDSA', 'eddsa-1'),
];

const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port ?? 0, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients,
  jwks: { keys },
  scopes,
  cookies: { keys: [randomBytes(32).toString('hex')] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator, client) => {
        const options = tokenOptions.get(client.clientId) ?? {};
        return {
          scope: scopes.join(' '),
          audience: resourceIndicator,
          accessTokenTTL,
          accessTokenFormat: options.format ?? 'jwt',
          jwt: { sign: { alg: options.alg ?? accessTokenAlg } },
        };
      },
    },
  },
});
provider.on('server_error', (ctx, error) => console.error('server_error', error));
// One stderr line per token issued, for tests that count token requests.
provider.on('grant.success', (ctx) => console.error('grant.success', ctx.oidc.client?.clientId ?? ''));

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
