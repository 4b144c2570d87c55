/** The app's API keys: list, create (an HMAC secret is shown once), enable, disable, delete. */
import Type from 'typebox';
import { KeyKind, oneOf } from '@mps/shared';
import type { Api } from '../api.js';
import { appOf } from '../auth.js';
import type { KeyStore } from '../keys.js';

const KeyInfo = Type.Object({
  id: Type.String(),
  kind: oneOf(KeyKind),
  status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
  createdAt: Type.String(),
});
const NewKey = Type.Object({
  ...KeyInfo.properties,
  secret: Type.Optional(Type.String({ description: 'HMAC keys only; shown once, never again' })),
});
const CreateKey = Type.Object(
  {
    kind: oneOf(KeyKind),
    publicKey: Type.Optional(Type.String({ maxLength: 8192, description: 'PEM (SPKI) public key for rsa (>= 2048 bits) or ed25519' })),
  },
  { additionalProperties: false },
);
const KeyParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

export function keyRoutes(app: Api, keys: KeyStore): void {
  app.get('/v1/keys', { schema: { response: { 200: Type.Object({ keys: Type.Array(KeyInfo) }) } } }, async (request) => ({
    keys: await keys.list(appOf(request)),
  }));

  app.post('/v1/keys', { schema: { body: CreateKey, response: { 201: NewKey } } }, async (request, reply) =>
    reply.code(201).send(await keys.create(appOf(request), request.body.kind, request.body.publicKey)),
  );

  app.post('/v1/keys/:id/disable', { schema: { params: KeyParams, response: { 200: KeyInfo } } }, async (request) =>
    keys.setStatus(appOf(request), request.params.id, 'disabled'),
  );

  app.post('/v1/keys/:id/enable', { schema: { params: KeyParams, response: { 200: KeyInfo } } }, async (request) =>
    keys.setStatus(appOf(request), request.params.id, 'active'),
  );

  app.delete('/v1/keys/:id', { schema: { params: KeyParams } }, async (request, reply) => {
    await keys.delete(appOf(request), request.params.id);
    return reply.code(204).send();
  });
}
