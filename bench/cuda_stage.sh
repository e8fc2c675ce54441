#!/usr/bin/env bash
# Download the wheels of bench/cuda_wheels.txt for CPython 3.12 on x86-64 Linux into .device/,
# and split them into parts of 57 MiB, each small enough to travel with one call to a GPU machine
# that reaches no package registry. Run from the repository root where a registry is reachable.
set -euo pipefail
dest=.device
rm -rf "$dest" && mkdir -p "$dest/wheels"
grep -v '^\s*#' bench/cuda_wheels.txt | grep -v '^\s*$' | xargs python3 -m pip download -q \
  --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$dest/wheels"
tar cf - -C "$dest/wheels" . | split -b 57M -d - "$dest/p"
ls -la "$dest"/p*
n=$(ls "$dest"/p* | wc -l)
echo "$n parts; call k (1..$n) carries .device/p0(k-1) and runs:"
echo "  mkdir -p /tmp/stage && cp .device/pNN /tmp/stage/"
echo "the last call then runs: bash bench/cuda_device_run.sh"
