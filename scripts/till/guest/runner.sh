#!/bin/sh
# Guest entry point, started by till-runner.service (baked into the image) with the host's
# share mounted on /mnt/host. Runs the phase the host asked for of the suite it named
# (guest/SUITE.sh: scenarios, the default, or power-cuts), then powers off (unless the phase
# ends with the host pulling the plug).
S=/mnt/host
phase=$(cat "$S/phase")
suite=$(cat "$S/suite" 2>/dev/null || echo scenarios)
mkdir -p "$S/results"
echo "till-runner: $suite phase $phase" >/dev/console
bash "$S/guest/$suite.sh" "$phase" >>"$S/results/runner-$phase.log" 2>&1
echo "till-runner: $suite phase $phase finished" >/dev/console
sync
systemctl poweroff
