#!/usr/bin/env bash
# SIGTERM (graceful shutdown) the runners started by start-runners.sh
cd "$(dirname "$0")"
for f in logs/runner-*.pid; do pid=$(cat "$f"); kill -TERM "$pid" 2>/dev/null && echo "SIGTERM $pid"; rm -f "$f"; done
