#!/usr/bin/env bash
# Measure the example server: a closed-loop profile, then campaign A (to calibrate on) and campaign B (to check
# predictions against), each a run per rate. Everything stays on 127.0.0.1; the server is stopped at the end.
#   bash examples/own-server/measure.sh [RATES] [SECONDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rates=${1:-"200 400 600 750 850"}
seconds=${2:-4}
port=8093
python "$here/server.py" --port $port --workers 1 > /dev/null &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
sleep 1.5
mkdir -p "$here/logs"
python "$here/load.py" --url http://127.0.0.1:$port --closed-loop 2000 --out "$here/profile.csv"
for campaign in A B; do
  seed=$([ $campaign = A ] && echo 0 || echo 100)
  for rate in $rates; do
    python "$here/load.py" --url http://127.0.0.1:$port --rate "$rate" --duration-s "$seconds" --seed "$seed" \
      --out "$here/logs/$campaign-$rate.jsonl"
    seed=$((seed + 1))
  done
done
