// oidc-provider (panva, OpenID Certified) as the OpenID Connect / OAuth 2 peer of twig's SSO tests.
// `npm ci` here, then: PORT=9090 AUTO_LOGIN=1 REDIRECT_URIS=... node server.mjs   (prints "READY <discovery>")
// env: PORT; ISSUER (default http://127.0.0.1:PORT); AUTO_LOGIN=1 (no UI: signs in the login_hint user, or
//      alice, with that user's amr, and consents); REDIRECT_URIS (comma list); AT_TTL (access token seconds);
//      ROTATE_RT=1 (always rotate refresh tokens).
// Clients: test-client (client_secret_basic), test-client-post (client_secret_post), test-public (PKCE only).
// Microsoft-shaped aliases (/common/oauth2/v2.0/authorize|token, Graph /v1.0/me) let allauth's "microsoft"
// provider target it too; Google-shaped use is plain OIDC (/auth, /token, /me, /jwks).
import Provider from 'oidc-provider';
import { generateKeyPairSync } from 'node:crypto';

const PORT = Number(process.env.PORT || 9090);
const ISSUER = process.env.ISSUER || `http://127.0.0.1:${PORT}`;
const AUTO = process.env.AUTO_LOGIN === '1';
const REDIRECTS = (process.env.REDIRECT_URIS || 'http://127.0.0.1:8000/callback/').split(',').filter(Boolean);

// Accounts. amr is what the IdP says about how the user authenticated (used as the login's amr).
const USERS = {
  alice: { email: 'alice@example.org', email_verified: true, name: 'Alice Liddell', given_name: 'Alice',
    family_name: 'Liddell', groups: ['Engineering'], amr: ['pwd'] },
  bob: { email: 'bob@example.org', email_verified: true, name: 'Bob Builder', given_name: 'Bob',
    family_name: 'Builder', groups: ['Admins'], amr: ['pwd', 'mfa', 'otp'] },
  carol: { email: 'carol@example.org', email_verified: false, name: 'Carol Unverified', given_name: 'Carol',
    family_name: 'Unverified', groups: [], amr: ['pwd'] },
  dave: { name: 'Dave Noemail', given_name: 'Dave', family_name: 'Noemail', groups: [], amr: ['pwd'] },
  mallory: { email: 'mallory@outside.test', email_verified: true, name: 'Mallory Outside', given_name: 'Mallory',
    family_name: 'Outside', groups: [], amr: ['pwd'] },
};
const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

const configuration = {
  clients: [
    { client_id: 'test-client', client_secret: 'test-secret', redirect_uris: REDIRECTS,
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic' },
    { client_id: 'test-client-post', client_secret: 'test-secret', redirect_uris: REDIRECTS,
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post' },
    { client_id: 'test-public', redirect_uris: REDIRECTS, grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'], token_endpoint_auth_method: 'none' },
  ],
  jwks: { keys: [{ ...jwk, kid: 'test-key-1', use: 'sig', alg: 'RS256' }] },
  cookies: { keys: ['test-cookie-key-not-secret'] },
  claims: {
    openid: ['sub', 'amr', 'auth_time'],     // amr (how the user authenticated) in every ID token
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'groups'],
  },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'api:read'],
  conformIdTokenClaims: false,              // email/profile claims also in the id_token (Google-like)
  pkce: { required: () => true },           // PKCE (S256 only) for every client
  features: {
    devInteractions: { enabled: !AUTO },    // built-in login + consent pages (any password)
    revocation: { enabled: true },          // RFC 7009  /token/revocation
    introspection: { enabled: true },       // RFC 7662  /token/introspection
    rpInitiatedLogout: { enabled: true },   // /session/end
  },
  // refresh token whenever the client has the grant (no offline_access + prompt=consent dance)
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  ttl: { AccessToken: Number(process.env.AT_TTL || 3600) },
  async findAccount(ctx, id) {
    if (!USERS[id]) return undefined;
    const { amr, ...claims } = USERS[id];
    return { accountId: id, async claims() { return { sub: id, ...claims }; } };
  },
};
if (process.env.ROTATE_RT === '1') configuration.rotateRefreshToken = () => true;
const provider = new Provider(ISSUER, configuration);

function accountFor(hint) {
  if (USERS[hint]) return hint;
  return Object.keys(USERS).find((u) => USERS[u].email === hint) || 'alice';
}

if (AUTO) {   // zero-click: finish login (login_hint = user id or email) and consent automatically
  provider.use(async (ctx, next) => {
    if (!(ctx.method === 'GET' && /^\/interaction\/[^/]+$/.test(ctx.path))) return next();
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const { prompt, params, session } = details;
    if (prompt.name === 'login') {
      const accountId = accountFor(params.login_hint);
      return provider.interactionFinished(ctx.req, ctx.res, { login: { accountId, amr: USERS[accountId].amr } },
        { mergeWithLastSubmission: false });
    }
    const grant = details.grantId ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) {
      for (const [ind, sc] of Object.entries(d.missingResourceScopes)) grant.addResourceScope(ind, sc.join(' '));
    }
    return provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId: await grant.save() } },
      { mergeWithLastSubmission: true });
  });
}

// Microsoft-shaped aliases + a tiny Graph /v1.0/me so allauth's "microsoft" provider can target this OP
const MS_ALIASES = { '/common/oauth2/v2.0/authorize': '/auth', '/common/oauth2/v2.0/token': '/token' };
provider.use(async (ctx, next) => {
  if (MS_ALIASES[ctx.path]) ctx.path = MS_ALIASES[ctx.path];
  if (ctx.path === '/v1.0/me') {
    const at = await provider.AccessToken.find((ctx.get('authorization') || '').replace(/^Bearer /i, ''));
    if (!at) { ctx.status = 401; ctx.body = { error: { code: 'InvalidAuthenticationToken' } }; return undefined; }
    const u = USERS[at.accountId];
    ctx.body = { id: at.accountId, mail: u.email || null, userPrincipalName: u.email || `${at.accountId}@upn.test`,
      displayName: u.name, givenName: u.given_name, surname: u.family_name };
    return undefined;
  }
  return next();
});

provider.on('server_error', (ctx, err) => console.error('server_error', err));
// one line per token-endpoint grant (GRANT_ERROR when refused), so tests can count refreshes (tests/connectors)
provider.on('grant.success', (ctx) => console.log(`GRANT ${ctx.oidc.params.grant_type}`));
provider.on('grant.error', (ctx, err) => console.log(`GRANT_ERROR ${ctx.oidc?.params?.grant_type} ${err.error}`));
provider.listen(PORT, '127.0.0.1', () => console.log(`READY ${ISSUER}/.well-known/openid-configuration`));
