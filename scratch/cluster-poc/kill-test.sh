#!/usr/bin/env bash
# Kill test: submit a fan-out job, SIGKILL a runner that is executing a part
# (by default one that does NOT host the parent workflow; pass "parent" to kill
# the runner hosting the parent FanoutJob instead, or "port=34432" to kill that
# runner), measure failover, then
# re-submit the same runId.
# Assumes 3 runners were started with ./start-runners.sh
set -u
cd "$(dirname "$0")"
RUN=${RUN:-kill-$(date +%s)}
TARGET=${1:-worker}
SLEEP=${SLEEP:-10000}
echo "== submitting $RUN (6 parts, ${SLEEP}ms each)"
node submit.ts "$RUN" --mode fanout --parts p1,p2,p3,p4,p5,p6 --sleep "$SLEEP" > "logs/submit-$RUN.log" 2>&1 &
SUBMIT=$!
sleep 3
PARENT_PID=$(grep -h "WORKFLOW FanoutJob run=$RUN " logs/runner-*.log | head -1 | sed -E 's/.*pid=([0-9]+).*/\1/')
VICTIM=""
for pid in $(grep -h "START part=.* run=$RUN " logs/runner-*.log | sed -E 's/.*pid=([0-9]+).*/\1/' | sort -u); do
  if [ "$TARGET" = "parent" ]; then [ "$pid" = "$PARENT_PID" ] && VICTIM=$pid
  else [ "$pid" != "$PARENT_PID" ] && VICTIM=$pid; fi
done
[ -z "$VICTIM" ] && VICTIM=$PARENT_PID
case "$TARGET" in port=*) VICTIM=$(cat "logs/runner-${TARGET#port=}.pid") ;; esac
VLOG=$(grep -l "pid=$VICTIM " logs/runner-*.log | head -1)
echo "== parent FanoutJob on pid=$PARENT_PID; killing pid=$VICTIM ($VLOG) running parts:" \
  $(grep -h "START part=.* run=$RUN " "$VLOG" | sed -E 's/.*part=([^ ]+).*/\1/')
KILL_MS=$(date +%s%3N)
kill -9 "$VICTIM"
echo "== SIGKILL at $(date -u +%H:%M:%S.%3N)"
wait $SUBMIT
DONE_MS=$(date +%s%3N)
echo "== client finished $((DONE_MS - KILL_MS))ms after the kill"
echo "== timeline for $RUN:"
grep -h "run=$RUN" logs/runner-*.log | sort
echo "== client output:"; cat "logs/submit-$RUN.log" | grep -v '^ ' | head -5
grep -A200 RESULT "logs/submit-$RUN.log" | grep -E '"(part|port)"' | paste - - | sed 's/ \+/ /g'
echo "== re-submitting $RUN (should return the stored result immediately, no new START lines)"
BEFORE=$(grep -h "run=$RUN" logs/runner-*.log | wc -l)
node submit.ts "$RUN" --mode fanout --parts p1,p2,p3,p4,p5,p6 --sleep "$SLEEP" 2>&1 | grep -E "RESULT|FAILED"
AFTER=$(grep -h "run=$RUN" logs/runner-*.log | wc -l)
echo "== runner log lines for $RUN before/after re-submit: $BEFORE / $AFTER"
echo "== restart the killed runner with: RUNNER_PORT=${VLOG//[^0-9]/} node runner.ts"
