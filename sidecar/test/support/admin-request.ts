// A plain HTTPS request to a test control plane as the cluster admin (client
// certificate), for what the typed clients hide: response headers such as
// `warning`, Table output, strict field validation.

import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:https';
import type { ControlPlane } from './kube.ts';

export interface AdminAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export function asAdmin(
  kube: ControlPlane,
  method: string,
  path: string,
  body?: object,
  headers: Record<string, string> = {},
): Promise<AdminAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${kube.server}${path}`,
      {
        method,
        ca: kube.caPem,
        cert: kube.adminCert,
        key: kube.adminKey,
        headers: { 'content-type': 'application/json', ...headers },
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}
