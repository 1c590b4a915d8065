import t from 'tap';
import { toStructural } from './structural-schema.ts';

t.test('keeps validations, drops what the API server refuses, notes defaults', async (t) => {
  const out = toStructural({
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    additionalProperties: false,
    required: ['size'],
    properties: {
      size: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER, default: 3, description: 'How many' },
      kind: { type: 'string', const: 'full' },
      labels: { type: 'object', propertyNames: { pattern: '^[a-z]+$' }, additionalProperties: { type: 'string' } },
    },
  });
  t.same(out, {
    type: 'object',
    required: ['size'],
    properties: {
      size: { type: 'integer', minimum: 1, description: 'How many. Default: 3.' },
      kind: { type: 'string', enum: ['full'] },
      labels: { type: 'object', additionalProperties: { type: 'string' } },
    },
  });
});

t.test('unions become structural', async (t) => {
  t.same(
    toStructural({
      anyOf: [
        { type: 'integer', minimum: 400 },
        { type: 'string', enum: ['reset'] },
      ],
    }),
    {
      'x-kubernetes-int-or-string': true,
    },
  );
  t.same(
    toStructural({
      type: 'object',
      properties: {
        max: { type: 'string' },
        jitter: { anyOf: [{ type: 'string', const: 'full' }, { type: 'number' }], default: 'full' },
      },
    }),
    {
      type: 'object',
      properties: { max: { type: 'string' } },
      'x-kubernetes-preserve-unknown-fields': true,
      description: 'Also jitter: Default: "full".',
    },
    'a field of no single type is left to its parent, which keeps it unvalidated',
  );
  t.same(
    toStructural({
      anyOf: [
        { type: 'object', properties: { value: { type: 'string' } }, required: ['value'] },
        { type: 'object', properties: { secretEnv: { type: 'string', minLength: 1 } }, required: ['secretEnv'] },
      ],
    }),
    {
      type: 'object',
      properties: { value: { type: 'string' }, secretEnv: { type: 'string', minLength: 1 } },
      minProperties: 1,
    },
  );
});
