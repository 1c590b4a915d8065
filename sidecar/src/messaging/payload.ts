// A message body inside a JSON response: JSON bodies as their value, text as
// a string, anything else as base64.
import { isUtf8 } from 'node:buffer';

export type Payload = { data: unknown } | { dataBase64: string };

const JSON_TYPE = /^application\/([\w.+-]+\+)?json(\s*;|$)/i;
const TEXT_TYPE = /^(text\/|application\/(xml|x-www-form-urlencoded)(\s*;|$))/i;

export function encodePayload(body: Buffer, contentType: string | undefined): Payload {
  const type = contentType ?? '';
  if (JSON_TYPE.test(type) && isUtf8(body)) {
    try {
      return { data: JSON.parse(body.toString('utf8')) };
    } catch {
      // Not the JSON its content-type claims: handed over as bytes.
    }
  }
  if (TEXT_TYPE.test(type) && isUtf8(body)) return { data: body.toString('utf8') };
  return { dataBase64: body.toString('base64') };
}
