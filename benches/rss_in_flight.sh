#!/bin/bash
# Peak RSS of `rmq bench --mode async` (128 B bodies) with CONCURRENCY sends in flight against the null broker.
# Usage: benches/rss_in_flight.sh CONCURRENCY   (after cargo build --release -p rmq-cli -p rmq-testkit --bins)
# Issue #9 target: peak RSS with 10 000 sends in flight <= 2 x frame bytes in flight + 20 MiB
# (a 128 B send of `rmq bench` is a 369-byte frame: 27 687 KiB for 10 000).
# Two runs:
#   burst: 30 000 messages; the window of CONCURRENCY sends is issued at once at start-up (before any route or
#          connection exists) and refilled from the callbacks.
#   held:  600 000 messages; after 0.6 s the null broker is SIGSTOPped for 3 s, so the window stays in flight
#          (written, unanswered) while the client keeps running.
# RUNS=N repeats both runs N times and ends with min / median / max of each (the held run's peak varies
# with glibc's arenas: judge it by the median). RMQ=path/to/rmq measures another build.
# Set MALLOC_ARENA_MAX to see the allocator's share (glibc keeps one arena per thread that allocated).
cd "$(dirname "$0")/.." || exit 1
NB=target/release/rmq-null-broker; RMQ=${RMQ:-target/release/rmq}
run() { # name count stop-after
  $NB --listen 127.0.0.1:29876 > /tmp/nb.log 2>&1 & nbpid=$!
  sleep 0.5
  /usr/bin/time -v $RMQ bench --namesrv 127.0.0.1:29876 --topic RssTopic --mode async --concurrency "$CONCURRENCY" \
    --count "$2" --timeout 30s --json > "/tmp/rss_bench_$1.json" 2> "/tmp/rss_time_$1.log" & bpid=$!
  if [ -n "$3" ]; then sleep "$3"; kill -STOP $nbpid; sleep 3; kill -CONT $nbpid; fi
  wait $bpid
  kill $nbpid 2>/dev/null; wait $nbpid 2>/dev/null
  echo "$1: $(grep 'Maximum resident' "/tmp/rss_time_$1.log" | awk '{print $NF}') KiB peak RSS," \
    "$(grep -o '"acked":[0-9]*' "/tmp/rss_bench_$1.json") $(grep -o '"failed":[0-9]*' "/tmp/rss_bench_$1.json")"
}
CONCURRENCY=${1:-10000}
RUNS=${RUNS:-1}
: > /tmp/rss_runs.txt
for _ in $(seq "$RUNS"); do
  run burst 30000 "" | tee -a /tmp/rss_runs.txt
  run held 600000 0.6 | tee -a /tmp/rss_runs.txt
done
if [ "$RUNS" -gt 1 ]; then
  for kind in burst held; do
    grep "^$kind:" /tmp/rss_runs.txt | awk '{print $2}' | sort -n | awk -v k="$kind" \
      '{v[NR]=$1} END {m = (NR % 2) ? v[(NR+1)/2] : int((v[NR/2] + v[NR/2+1]) / 2);
        printf "%s over %d runs: min %d, median %d, max %d KiB\n", k, NR, v[1], m, v[NR]}'
  done
fi
