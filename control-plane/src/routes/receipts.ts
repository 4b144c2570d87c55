/** The app's receipt callback: PUT sets the URL, GET shows it, DELETE removes it. */
import Type from 'typebox';
import type { Db } from '@mps/shared';
import type { Api } from '../api.js';
import { appOf } from '../auth.js';
import { ApiError } from '../errors.js';

const Callback = Type.Object({ url: Type.Union([Type.String(), Type.Null()]) });

export function receiptRoutes(app: Api, db: Db): void {
  app.get('/v1/receipts/callback', { schema: { response: { 200: Callback } } }, async (request) => {
    const r = await db.query<{ receipt_url: string | null }>('SELECT receipt_url FROM apps WHERE id = $1', [appOf(request)]);
    return { url: r.rows[0]?.receipt_url ?? null };
  });

  app.put(
    '/v1/receipts/callback',
    { schema: { body: Type.Object({ url: Type.String({ maxLength: 2048 }) }, { additionalProperties: false }), response: { 200: Callback } } },
    async (request) => {
      let url: URL;
      try {
        url = new URL(request.body.url);
      } catch (cause) {
        throw new ApiError('INVALID_URL', 'url is not a URL', { cause });
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ApiError('INVALID_URL', 'url must be http or https');
      await db.query('UPDATE apps SET receipt_url = $2 WHERE id = $1', [appOf(request), url.toString()]);
      return { url: url.toString() };
    },
  );

  app.delete('/v1/receipts/callback', async (request, reply) => {
    await db.query('UPDATE apps SET receipt_url = NULL WHERE id = $1', [appOf(request)]);
    return reply.code(204).send();
  });
}
