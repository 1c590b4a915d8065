// Turns the JSON Schema that zod writes into an OpenAPI v3 schema the API
// server accepts for a CRD: "structural" (every node typed, no types inside
// anyOf), no additionalProperties: false (the API server prunes unknown fields
// instead), no keywords it does not know. What it cannot express exactly it
// widens: a one-of-three object becomes one object, an integer-or-string
// int-or-string, and a field of no single type (a number or "full") is left
// to its parent, which then keeps unknown fields. The sidecar's own validation
// reports the rest in the resource's status.

export interface JsonSchema {
  type?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: boolean | JsonSchema;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  [keyword: string]: unknown;
}

/** Keywords kept as they are: validations both sides understand. */
const KEPT = [
  'type',
  'description',
  'pattern',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'format',
];
/** Marks a field no single OpenAPI type describes; its parent drops it and keeps unknown fields. */
const UNTYPED = 'x-outrigger-untyped';
/** zod's bound for z.int(); not a limit anyone means. */
const SAFE_INTEGER_MAX = Number.MAX_SAFE_INTEGER;

export function toStructural(node: JsonSchema): JsonSchema {
  if (node.anyOf !== undefined) return union(node);
  const out: JsonSchema = {};
  for (const keyword of KEPT) if (node[keyword] !== undefined) out[keyword] = node[keyword];
  if (out.maximum === SAFE_INTEGER_MAX) delete out.maximum;
  const description = describe(node);
  if (description !== undefined) out.description = description;
  if (node.const !== undefined) out.enum = [node.const];
  if (node.enum !== undefined) out.enum = node.enum;
  if (node.properties !== undefined) {
    const untyped: string[] = [];
    const properties: Record<string, JsonSchema> = {};
    for (const [key, child] of Object.entries(node.properties)) {
      const converted = toStructural(child);
      if (converted[UNTYPED] === true) untyped.push(`${key}: ${converted.description ?? 'see the docs'}`);
      else properties[key] = converted;
    }
    out.properties = properties;
    if (untyped.length > 0) {
      out['x-kubernetes-preserve-unknown-fields'] = true;
      out.description = [out.description, `Also ${untyped.join('; ')}`].filter(Boolean).join('. ');
    }
    if (node.required !== undefined && node.required.length > 0) out.required = node.required;
  }
  if (node.items !== undefined) out.items = toStructural(node.items);
  if (typeof node.additionalProperties === 'object') out.additionalProperties = toStructural(node.additionalProperties);
  return out;
}

/** The description, with the default the sidecar applies (the CRD does not default: the sidecar's version does). */
function describe(node: JsonSchema): string | undefined {
  const hasDefault =
    node.default !== undefined &&
    !(typeof node.default === 'object' && node.default !== null && Object.keys(node.default).length === 0);
  if (!hasDefault) return node.description;
  const text = `Default: ${JSON.stringify(node.default)}.`;
  return node.description === undefined ? text : `${node.description}. ${text}`;
}

function union(node: JsonSchema): JsonSchema {
  const branches = (node.anyOf ?? []).map(toStructural);
  const types = new Set(branches.map((branch) => branch.type));
  const description = describe(node);
  const base: JsonSchema = description === undefined ? {} : { description };
  if (types.size === 1 && types.has('object')) {
    // One object with every branch's fields; which combination is allowed is the sidecar's to say.
    const properties = Object.assign({}, ...branches.map((branch) => branch.properties ?? {}));
    return { ...base, type: 'object', properties, minProperties: 1 };
  }
  if ([...types].every((type) => type === 'integer' || type === 'string')) {
    return { ...base, 'x-kubernetes-int-or-string': true };
  }
  return { ...base, [UNTYPED]: true };
}
