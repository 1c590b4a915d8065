// docs/configuration.md documents every field of the schema with its default.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { z } from 'zod';
import { ConfigSchema } from './schema.ts';

interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  default?: unknown;
}

function fields(schema: JsonSchema, path: string, out: Map<string, unknown>): Map<string, unknown> {
  if (schema.properties !== undefined) {
    // A section (app, broker, a subscription...) has no row of its own; its fields do.
    for (const [key, child] of Object.entries(schema.properties))
      fields(child, path === '' ? key : `${path}.${key}`, out);
  } else if (schema.type === 'array' && schema.items?.properties !== undefined) {
    out.set(path, schema.default);
    fields(schema.items, `${path}[]`, out);
  } else {
    out.set(path, schema.default);
  }
  return out;
}

const doc = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
const rows = new Map(
  [...doc.matchAll(/^\| `([a-zA-Z.[\]]+)` +\| ([^|]+?) +\|/gm)].map(([, field, value]) => [field, value?.trim()]),
);

t.test('every setting has a row in docs/configuration.md, with its default', async (t) => {
  const schema = z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const all = fields(schema, '', new Map());
  for (const [field, value] of all) {
    const row = rows.get(field);
    t.ok(row !== undefined, `${field} is documented`);
    if (row === undefined || value === undefined) continue;
    const shown = Array.isArray(value)
      ? `[${value.join(', ')}]`
      : typeof value === 'object'
        ? JSON.stringify(value)
        : String(value);
    const documented = row.replaceAll('`', '');
    t.ok(
      documented === shown || (field === 'http.bodyLimit' && documented === '1MiB' && value === 1_048_576),
      `${field}: documented default ${documented}, schema default ${shown}`,
    );
  }
  for (const field of rows.keys()) t.ok(all.has(field as string), `documented ${field} exists in the schema`);
});
