// docs/errors.md lists every code the sidecar can answer with, each under the
// anchor its `type` URI points at, with the right status; nothing more.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { PROBLEM_TYPE_BASE, PROBLEMS, ProblemError, problemType } from './problems.ts';

const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
const rows = [...doc.matchAll(/^\| <a id="([a-z-]+)"><\/a>`([A-Z_]+)` +\| (\d{3}) +\|/gm)].map(
  ([, anchor, code, status]) => ({
    anchor,
    code,
    status: Number(status),
  }),
);

t.test('every code is documented under its anchor with its status', async (t) => {
  for (const [code, { status }] of Object.entries(PROBLEMS)) {
    const row = rows.find((entry) => entry.code === code);
    t.ok(row, `${code} has a row in docs/errors.md`);
    t.equal(`${PROBLEM_TYPE_BASE}${row?.anchor}`, problemType(code as keyof typeof PROBLEMS), `${code} anchor`);
    t.equal(row?.status, status, `${code} status`);
  }
  t.same(
    rows.map((row) => row.code).sort(),
    Object.keys(PROBLEMS).sort(),
    'no documented code is missing from the code',
  );
});

t.test('a problem body has the RFC 9457 members and the code', async (t) => {
  const problem = new ProblemError('BODY_TOO_LARGE', 'too big', { extensions: { limit: 10 }, headers: { a: 'b' } });
  t.same(problem.toBody('/v1/x'), {
    limit: 10,
    type: 'https://outrigger.dev/docs/errors#body-too-large',
    title: PROBLEMS.BODY_TOO_LARGE.title,
    status: 413,
    detail: 'too big',
    code: 'BODY_TOO_LARGE',
    instance: '/v1/x',
  });
  const spoof = new ProblemError('INTERNAL', 'x', { extensions: { code: 'OTHER', status: 200 } });
  t.equal(spoof.toBody().code, 'INTERNAL', 'extensions cannot override the standard members');
  t.equal(spoof.toBody().status, 500);
});
