#!/usr/bin/env bash
# Calibration service: every few seconds it calibrates a sensor in ONE
# PostgreSQL transaction that writes its business row (calibrations) and an
# outbox row (calibration_outbox). Its Outrigger sidecar relays each committed
# outbox row to RabbitMQ (sensor.calibrations) and deletes it
# (docs/outbox.md). Every fifth calibration, starting with the second, rolls
# back instead: neither row exists, so nothing is ever published for it.
# The message id is the business row's (calibration-<id>): unique for good,
# so consumers can dedupe on it, even across runs.
# bash and psql only: no driver, no SDK, no HTTP call to the sidecar.
set -euo pipefail

DATABASE_URL=${DATABASE_URL:-postgres://outrigger:outrigger@127.0.0.1:5432/outrigger}
# The outbox table its sidecar relays (outrigger.yaml, outbox.table).
OUTBOX_TABLE=${OUTBOX_TABLE:-calibration_outbox}
INTERVAL=${CALIBRATION_INTERVAL_SECONDS:-3}
FIRST_AFTER=${CALIBRATION_FIRST_AFTER_SECONDS:-1}
ROLLBACK_EVERY=${ROLLBACK_EVERY:-5}
case $ROLLBACK_EVERY in '' | *[!0-9]* | 0) echo "ROLLBACK_EVERY must be a whole number from 1" >&2; exit 2 ;; esac
case $OUTBOX_TABLE in *.*) echo "OUTBOX_TABLE: a table of the default schema, without a schema name" >&2; exit 2 ;; esac
SENSOR=${SENSOR_ID:-sensor-1}
export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-5} PGAPPNAME=calibration

running=1
sleeper=
stop() {
  running=0
  if [ -n "$sleeper" ]; then kill "$sleeper" 2>/dev/null || true; fi
}
trap stop TERM INT

# sql [psql options]: runs the SQL on stdin in one psql session; stops at the first error.
sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@" "$DATABASE_URL"; }

# pause SECONDS: sleeps, but returns at once on SIGTERM/SIGINT.
pause() {
  sleep "$1" &
  sleeper=$!
  wait "$sleeper" 2>/dev/null || true
  sleeper=
}

# ordinal N: 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st ...
ordinal() {
  local suffix=th
  case $(($1 % 100)) in
    11 | 12 | 13) ;;
    *) case $(($1 % 10)) in 1) suffix=st ;; 2) suffix=nd ;; 3) suffix=rd ;; esac ;;
  esac
  echo "$1$suffix"
}

# Where the database is, without its password.
where=$DATABASE_URL
if [[ $where =~ ^([a-z]+://[^:@/]*):[^@/]*@(.*)$ ]]; then where=${BASH_REMATCH[1]}@${BASH_REMATCH[2]}; fi

if ! error=$(sql 2>&1 >/dev/null <<'SQL'
CREATE TABLE IF NOT EXISTS calibrations (
  id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sensor   text NOT NULL,
  offset_c numeric(3, 1) NOT NULL,
  at       timestamptz NOT NULL DEFAULT now()
);
SQL
); then
  echo "cannot use PostgreSQL at $where: ${error:-psql failed}" >&2
  echo "  (make demo starts it: scripts/bootstrap.sh services; or set DATABASE_URL)" >&2
  exit 1
fi

# The sidecar creates its outbox table when it starts: wait for it, briefly.
deadline=$((SECONDS + 10))
until [ "$(sql -v table="$OUTBOX_TABLE" <<<"SELECT to_regclass(:'table') IS NOT NULL;")" = t ]; do
  [ "$running" = 1 ] || exit 0
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "table $OUTBOX_TABLE still missing after 10 s: is the sidecar's outbox relay on (outrigger.yaml, outbox)?" >&2
    exit 1
  fi
  [ -n "${waiting:-}" ] || echo "waiting for the sidecar to create $OUTBOX_TABLE"
  waiting=1
  pause 0.2
done

# ROLLBACK_EVERY=1: n % 1 = 2 % 1 for every n, the 1st too.
if [ "$ROLLBACK_EVERY" = 1 ]; then rollbacks="every one rolls back"; else rollbacks="every $(ordinal "$ROLLBACK_EVERY"), from the 2nd, rolls back"; fi
echo "calibrating $SENSOR every $INTERVAL s into $where; $rollbacks"
pause "$FIRST_AFTER"
n=0
while [ "$running" = 1 ]; do
  n=$((n + 1))
  # An offset from -0.5 to +0.5 C, in tenths.
  tenths=$((RANDOM % 11 - 5))
  sign=
  [ "$tenths" -ge 0 ] || sign=-
  abs=${tenths#-}
  offset=$sign$((abs / 10)).$((abs % 10))
  if [ $((n % ROLLBACK_EVERY)) = $((2 % ROLLBACK_EVERY)) ]; then end=ROLLBACK; else end=COMMIT; fi

  # One transaction: the business row, then the outbox row with its id, then
  # COMMIT (or ROLLBACK). psql variables (:'sensor', :offset) keep the values
  # out of the SQL's own text; \gset sets :id from the row.
  if out=$(sql -v sensor="$SENSOR" -v offset="$offset" -v table="$OUTBOX_TABLE" -v end="$end" 2>&1 <<'SQL'
BEGIN;
INSERT INTO calibrations (sensor, offset_c) VALUES (:'sensor', :offset)
RETURNING 'calibration-' || id AS id \gset
INSERT INTO :"table" (id, topic, payload, headers)
VALUES (:'id', 'sensor.calibrations',
        convert_to(json_build_object('id', :'id', 'sensor', :'sensor', 'offsetC', :offset, 'at', now())::text, 'UTF8'),
        '{"ce-type": "sensor.calibrated", "ce-source": "/calibration"}');
\echo :id
:end;
SQL
  ); then
    id=${out##*$'\n'}
    if [ "$end" = COMMIT ]; then
      echo "calibrated $SENSOR by $offset C ($id), committed with its outbox row"
    else
      echo "calibrated $SENSOR by $offset C ($id), then ROLLBACK: no calibrations row, no outbox row, never published"
    fi
  else
    [ "$running" = 1 ] || break
    echo "calibration not written: ${out:-psql failed}; trying again in $INTERVAL s" >&2
  fi
  pause "$INTERVAL"
done
echo "stopped after $n calibrations"
