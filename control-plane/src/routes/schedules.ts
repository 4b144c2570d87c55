/** GET /v1/schedules/{id}: a scheduled push's firings; DELETE cancels what has not fired. */
import Type from 'typebox';
import type { Api } from '../api.js';
import { appOf } from '../auth.js';
import type { Scheduler } from '../scheduler.js';

const Params = Type.Object({ id: Type.String({ format: 'uuid' }) });

export function scheduleRoutes(app: Api, scheduler: Scheduler): void {
  app.get('/v1/schedules/:id', { schema: { params: Params } }, async (request) => scheduler.status(appOf(request), request.params.id));

  app.delete(
    '/v1/schedules/:id',
    { schema: { params: Params, response: { 200: Type.Object({ cancelled: Type.Integer() }) } } },
    async (request) => ({ cancelled: await scheduler.cancel(appOf(request), request.params.id) }),
  );
}
