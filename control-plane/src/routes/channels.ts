/**
 * Vendor channel credentials: PUT (validated, sealed at rest), GET the list of summaries, DELETE.
 * No answer ever carries a secret: summaries hold ids, names and fingerprints only.
 */
import Type from 'typebox';
import { ChannelConfigError, oneOf, Vendor, type ChannelStore } from '@mps/shared';
import type { Api } from '../api.js';
import { appOf } from '../auth.js';
import { ApiError } from '../errors.js';
import type { VendorJobs } from '../vendor-jobs.js';

const Params = Type.Object({ vendor: oneOf(Vendor) });
const Summary = Type.Object({
  vendor: oneOf(Vendor),
  updatedAt: Type.String(),
  summary: Type.Record(Type.String(), Type.Unknown(), { description: 'what may be shown of the credentials: ids, names, fingerprints' }),
});

export function channelRoutes(app: Api, channels: ChannelStore, jobs: VendorJobs): void {
  app.get('/v1/channels', { schema: { response: { 200: Type.Object({ channels: Type.Array(Summary) }) } } }, async (request) => ({
    channels: await channels.list(appOf(request)),
  }));

  app.put(
    '/v1/channels/:vendor',
    {
      schema: {
        params: Params,
        body: Type.Object({}, { additionalProperties: true, description: 'the vendor credentials: see docs/api.md, "Vendor channels"' }),
        response: { 200: Summary },
      },
    },
    async (request) => {
      try {
        const saved = await channels.save(appOf(request), request.params.vendor, request.body);
        jobs.forget(appOf(request));
        return saved;
      } catch (error) {
        if (!(error instanceof ChannelConfigError)) throw error;
        throw new ApiError('INVALID_CHANNEL', `${error.field} ${error.message}`, { field: error.field });
      }
    },
  );

  app.delete('/v1/channels/:vendor', { schema: { params: Params } }, async (request, reply) => {
    if (!(await channels.remove(appOf(request), request.params.vendor))) {
      throw new ApiError('CHANNEL_NOT_FOUND', `no ${request.params.vendor} channel is configured`);
    }
    jobs.forget(appOf(request));
    return reply.code(204).send();
  });
}
