"""Sensor simulator: publishes a temperature reading every second through its
Outrigger sidecar. Standard library only: the sidecar is plain HTTP."""

import json
import os
import random
import signal
import sys
import time
import urllib.error
import urllib.request

SIDECAR = os.environ.get("OUTRIGGER_URL", "http://127.0.0.1:3600")
TOPIC = "sensor.readings"
INTERVAL = float(os.environ.get("SENSOR_INTERVAL_SECONDS", "1"))

running = True


def stop(_signum, _frame):
    global running
    running = False


def publish(reading):
    request = urllib.request.Request(
        f"{SIDECAR}/v1/publish/{TOPIC}",
        data=json.dumps(reading).encode(),
        headers={"content-type": "application/json", "idempotency-key": reading["id"]},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = json.load(response)
            return f"published {reading['id']} ({reading['celsius']} C) -> {response.status}, routed={body.get('routed')}"
    except urllib.error.HTTPError as error:
        problem = json.load(error)
        return f"sidecar answered {error.code} {problem.get('code')}: {problem.get('detail')}"
    except (urllib.error.URLError, TimeoutError) as error:
        return f"sidecar unreachable: {error}"


def main():
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sensor = os.environ.get("SENSOR_ID", "sensor-1")
    # Reading ids are <prefix>-<n>: replicas of one sensor each need their own prefix.
    prefix = os.environ.get("READING_ID_PREFIX") or sensor
    sequence = 0
    while running:
        sequence += 1
        reading = {
            "id": f"{prefix}-{sequence}",
            "sensor": sensor,
            "celsius": round(random.gauss(21.0, 1.5), 2),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        print(publish(reading), flush=True)
        deadline = time.monotonic() + INTERVAL
        while running and time.monotonic() < deadline:
            time.sleep(0.05)
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
