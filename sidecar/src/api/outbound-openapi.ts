// The outbound proxy's paths in the OpenAPI document (GET /v1/openapi.json).
// The proxy is not a fastify route (api/outbound.ts), so @fastify/swagger
// cannot generate them; app.ts adds these.
import { OUTBOUND_METHODS } from '../outbound/target-client.ts';
import { PROBLEMS, type ProblemCode } from './problems.ts';

/** The codes a call can be answered with by the sidecar itself (the target's own statuses pass through). */
const CODES: ProblemCode[] = [
  'PATH_INVALID',
  'REQUEST_INVALID',
  'UNAUTHORIZED',
  'TARGET_UNKNOWN',
  'BULKHEAD_FULL',
  'UPSTREAM_UNREACHABLE',
  'CIRCUIT_OPEN',
  'SHUTTING_DOWN',
  'UPSTREAM_TIMEOUT',
];

function operation(withPath: boolean) {
  const byStatus = new Map<number, ProblemCode[]>();
  for (const code of CODES) byStatus.set(PROBLEMS[code].status, [...(byStatus.get(PROBLEMS[code].status) ?? []), code]);
  const responses: Record<string, unknown> = {
    default: {
      description:
        "The target's answer, status, headers and body as it sent them (hop-by-hop headers removed), with outrigger-attempts",
    },
  };
  for (const [status, codes] of byStatus) {
    responses[String(status)] = {
      description: `Problem details from the sidecar: ${codes.join(', ')}`,
      content: { 'application/problem+json': { schema: { type: 'object' } } },
    };
  }
  return {
    summary: 'Call a configured target through the sidecar: its policies apply and its secret headers are added',
    // In the description rather than as a header parameter: the parameters are the path's (app.test.ts).
    description:
      "An `outrigger-timeout` header (a duration above 0, such as 1500ms or 2s) sets a deadline for the whole call, or shortens the target's: past it, 504 UPSTREAM_TIMEOUT. Not a duration above 0 and at most 24d: 400 REQUEST_INVALID.",
    tags: ['outbound'],
    parameters: [
      { name: 'target', in: 'path', required: true, schema: { type: 'string' }, description: 'A configured target' },
      ...(withPath
        ? [
            {
              name: 'path',
              in: 'path',
              required: true,
              schema: { type: 'string' },
              description: "The rest of the path (slashes included) and the query, appended to the target's base URL",
            },
          ]
        : []),
    ],
    responses,
  };
}

export function outboundPaths(): Record<string, Record<string, unknown>> {
  const of = (withPath: boolean) =>
    Object.fromEntries(OUTBOUND_METHODS.map((method) => [method.toLowerCase(), operation(withPath)]));
  return { '/v1/outbound/{target}': of(false), '/v1/outbound/{target}/{path}': of(true) };
}
