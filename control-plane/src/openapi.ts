/**
 * The API described: /openapi.json (OpenAPI 3, from the route schemas, so it cannot drift) and
 * /reference, a plain HTML page rendered from the same document (no script, no CDN).
 */
import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { SignatureHeader } from '@mps/shared';

export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'mps push API',
        version: '1',
        description:
          'Every /v1 request is signed: see docs/api.md. Errors are JSON {"error": {"code", "message"}} with a stable code.',
      },
      components: {
        securitySchemes: Object.fromEntries(
          Object.values(SignatureHeader).map((name) => [name, { type: 'apiKey' as const, in: 'header' as const, name }]),
        ),
      },
      security: [Object.fromEntries(Object.values(SignatureHeader).map((name) => [name, []]))],
    },
  });
}

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

interface Operation {
  summary?: string;
  parameters?: { name: string; in: string; required?: boolean; schema?: unknown }[];
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}

export function serveOpenApi(app: FastifyInstance): void {
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/reference', { schema: { hide: true } }, async (_, reply) => {
    const doc = app.swagger() as { paths?: Record<string, Record<string, Operation>> };
    const sections = Object.entries(doc.paths ?? {}).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => {
        const params = (op.parameters ?? []).map((p) => `<li><code>${escape(p.name)}</code> (${p.in}${p.required ? ', required' : ''})</li>`).join('');
        const body = op.requestBody?.content?.['application/json']?.schema;
        const responses = Object.entries(op.responses ?? {})
          .map(([code, r]) => `<h4>${code}</h4><pre>${escape(JSON.stringify(r.content?.['application/json']?.schema ?? {}, null, 2))}</pre>`)
          .join('');
        return `<section><h2><code>${method.toUpperCase()} ${escape(path)}</code></h2>${params ? `<ul>${params}</ul>` : ''}${
          body ? `<h3>Body</h3><pre>${escape(JSON.stringify(body, null, 2))}</pre>` : ''
        }<h3>Responses</h3>${responses}</section>`;
      }),
    );
    reply
      .type('text/html; charset=utf-8')
      .send(
        `<!doctype html><html><head><meta charset="utf-8"><title>mps API reference</title><style>body{font:14px system-ui;max-width:60rem;margin:2rem auto}pre{background:#f4f4f4;padding:.5rem;overflow:auto}section{border-top:1px solid #ddd}</style></head><body><h1>mps API reference</h1><p>Machine-readable: <a href="/openapi.json">/openapi.json</a>. Signing: docs/api.md.</p>${sections.join('')}</body></html>`,
      );
  });
}
