import t from 'tap';
import { KubeApiError } from './api/errors.ts';
import { isRetryable } from './status-writer.ts';

t.test('a failed status write is retried when the failure may pass', async (t) => {
  for (const code of [408, 409, 429, 500, 502, 503, 504]) {
    t.ok(isRetryable(new KubeApiError(code)), `${code}`);
  }
  t.ok(isRetryable(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), 'no connection');
  t.ok(isRetryable(new Error('Headers Timeout Error')), 'no answer in time');
  for (const code of [400, 401, 403, 404, 410, 415, 422]) {
    t.notOk(isRetryable(new KubeApiError(code)), `${code}: an answer about the request itself`);
  }
});
