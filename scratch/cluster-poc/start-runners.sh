#!/usr/bin/env bash
# start 3 runners in the background (logs/runner-<port>.log, logs/runner-<port>.pid)
cd "$(dirname "$0")"; mkdir -p logs
for p in ${PORTS:-34431 34432 34433}; do
  RUNNER_PORT=$p nohup node runner.ts > logs/runner-$p.log 2>&1 &
  echo $! > logs/runner-$p.pid
done
sleep 3; tail -n1 logs/runner-*.log
