/** Templates: PUT (create or replace), GET one or all, DELETE; with the placeholders each uses. */
import Type from 'typebox';
import { namedRecord } from '@mps/shared';
import type { Api } from '../api.js';
import { appOf } from '../auth.js';
import { ApiError } from '../errors.js';
import { placeholders, type TemplateStore } from '../templates.js';

// Not '.' or '..', which URL normalisation would turn into another path.
const Name = Type.String({ pattern: '^(?!\\.{1,2}$)[A-Za-z0-9_.-]{1,64}$' });
const TemplateBody = Type.Object(
  {
    title: Type.Optional(Type.String({ maxLength: 256 })),
    body: Type.Optional(Type.String({ maxLength: 4096 })),
    extras: Type.Optional(namedRecord(Type.String({ maxLength: 1024 }), 64)),
  },
  { additionalProperties: false },
);
const TemplateOut = Type.Object({ name: Type.String(), ...TemplateBody.properties, placeholders: Type.Array(Type.String()) });

const withPlaceholders = <T extends { title?: string; body?: string; extras?: Record<string, string> }>(t: T) => ({
  ...t,
  placeholders: placeholders(t),
});

export function templateRoutes(app: Api, templates: TemplateStore): void {
  app.get('/v1/templates', { schema: { response: { 200: Type.Object({ templates: Type.Array(TemplateOut) }) } } }, async (request) => ({
    templates: (await templates.list(appOf(request))).map(withPlaceholders),
  }));

  app.get('/v1/templates/:name', { schema: { params: Type.Object({ name: Name }), response: { 200: TemplateOut } } }, async (request) =>
    withPlaceholders(await templates.get(appOf(request), request.params.name)),
  );

  app.put(
    '/v1/templates/:name',
    { schema: { params: Type.Object({ name: Name }), body: TemplateBody, response: { 200: TemplateOut, 201: TemplateOut } } },
    async (request, reply) => {
      const template = { name: request.params.name, ...request.body };
      if (!template.title && !template.body) throw new ApiError('EMPTY_TEMPLATE', 'a template needs a title or a body');
      const created = await templates.put(appOf(request), template);
      return reply.code(created ? 201 : 200).send(withPlaceholders(template));
    },
  );

  app.delete('/v1/templates/:name', { schema: { params: Type.Object({ name: Name }) } }, async (request, reply) => {
    await templates.delete(appOf(request), request.params.name);
    return reply.code(204).send();
  });
}
