#!/bin/bash
# Peak RSS of `rmq bench` with 10 000 async sends held in flight by a SIGSTOPped null broker.
# Usage: benches/rss_in_flight.sh CONCURRENCY   (after cargo build --release -p rmq-cli -p rmq-testkit --bins)
# Issue #9 target: peak RSS with 10 000 sends in flight <= 2 x frame bytes in flight + 20 MiB.
NB=$(dirname "$0")/../target/release/rmq-null-broker; RMQ=$(dirname "$0")/../target/release/rmq
$NB --listen 127.0.0.1:29876 > /tmp/nb.log 2>&1 & nbpid=$!
sleep 0.5
/usr/bin/time -v $RMQ bench --namesrv 127.0.0.1:29876 --topic RssTopic --mode async --concurrency $1 --count 30000 --timeout 30s --json > /tmp/rss_bench_$1.json 2> /tmp/rss_time_$1.log & bpid=$!
sleep 1.0; kill -STOP $nbpid
sleep 4
kill -CONT $nbpid
wait $bpid
grep "Maximum resident" /tmp/rss_time_$1.log
kill $nbpid
