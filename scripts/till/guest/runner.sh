#!/bin/sh
# Guest entry point, started by till-runner.service (baked into the image) with the host's
# share mounted on /mnt/host. Runs the phase the host asked for, then powers off (unless the
# phase ends with the host pulling the plug).
S=/mnt/host
phase=$(cat "$S/phase")
mkdir -p "$S/results"
echo "till-runner: phase $phase" >/dev/console
bash "$S/guest/scenarios.sh" "$phase" >>"$S/results/runner-$phase.log" 2>&1
echo "till-runner: phase $phase finished" >/dev/console
sync
systemctl poweroff
