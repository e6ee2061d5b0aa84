import * as z from 'zod';
import type { Operation } from './routes.ts';

/**
 * The OpenAPI 3.1 document, built from the routes as declared (`Routes.add`): paths, access
 * (bearer token and role), query parameters and request bodies (their JSON Schema from the
 * same zod schemas that check them). Hand-kept documents drift; this one cannot.
 */
export function openApiDocument(operations: Operation[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const operation of operations) {
    const path = openApiPath(operation.path);
    paths[path] = { ...paths[path], [operation.method]: describe(operation) };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'data-retention API',
      version,
      description:
        'Policies, runs, audit records, holds and pauses of a data-retention control store. ' +
        'Reads need a bearer token ' +
        '(RETENTION_VIEWER_TOKEN or RETENTION_API_TOKEN); actions need the operator token (RETENTION_API_TOKEN). ' +
        'Errors are { "error": { "code", "message", "issues"? } }. ' +
        'An X-Retention-Actor header names the person behind the token.',
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }, schemas: { Error: ERROR_SCHEMA } },
    paths,
  };
}

/** `/api/runs/:runId` → `/api/runs/{runId}`. */
export function openApiPath(path: string): string {
  return path.replace(/:(\w+)/g, '{$1}');
}

/** The error body every failure shares. */
const ERROR_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        issues: {
          type: 'array',
          items: {
            type: 'object',
            properties: { path: { type: 'string' }, message: { type: 'string' }, fix: { type: 'string' } },
          },
        },
      },
    },
  },
};

const ERROR = { content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };

function describe(operation: Operation): Record<string, unknown> {
  const parameters = [
    ...[...operation.path.matchAll(/:(\w+)/g)].map((match) => ({
      name: match[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    })),
    ...queryParameters(operation.query),
  ];
  const responses: Record<string, unknown> = {};
  for (const [status, description] of Object.entries(operation.responses)) {
    const type = operation.stream && status.startsWith('2') ? 'text/event-stream' : 'application/json';
    responses[status] =
      status.startsWith('2') || status === '503' ? { description, content: { [type]: {} } } : { description, ...ERROR };
  }
  if (operation.access !== 'public') responses['401'] = { description: 'no or a wrong bearer token', ...ERROR };
  if (operation.access === 'operator')
    responses['403'] = { description: 'a viewer token: actions need the operator token', ...ERROR };
  return {
    summary: operation.summary,
    'x-access': operation.access,
    security: operation.access === 'public' ? [{}, { bearer: [] }] : [{ bearer: [] }],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(operation.body
      ? { requestBody: { required: false, content: { 'application/json': { schema: jsonSchema(operation.body) } } } }
      : {}),
    responses,
  };
}

function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  // What callers send (before transforms): `budget` is "15m", not milliseconds.
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return rest;
}

function queryParameters(query: z.ZodType | undefined): Array<Record<string, unknown>> {
  if (!query) return [];
  const { properties = {}, required = [] } = jsonSchema(query) as {
    properties?: Record<string, unknown>;
    required?: string[];
  };
  return Object.entries(properties).map(([name, schema]) => ({
    name,
    in: 'query',
    required: required.includes(name),
    schema,
  }));
}
