#!/bin/sh
# Re-record the real guest consoles the parser tests run on. Boots real guests;
# run after changing the guest, the driver or the job script, then refresh the
# golden outputs: MMAPLAB_UPDATE_GOLDEN=1 npx vitest run test/unit
set -eu
cd "$(dirname "$0")/.."
out=test/fixtures/consoles
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
capture() { # name, then mmaplab run options
  name=$1; shift
  node bin/mmaplab.js run --json --output-dir "$tmp/$name" "$@" > /dev/null || true
  cp "$tmp/$name/console.log" "$out/$name.console.log"
  cp "$tmp/$name/records.jsonl" "$out/$name.records.jsonl"
  echo "captured $name"
}
# A booted guest (not a restored one): its console starts at boot, as parse tests expect.
capture seed --strategy seed --no-snapshot
capture grid
capture null-deref-mmap --module-dir test/fixtures/drivers/null-deref-mmap
capture warn-mmap --module-dir test/fixtures/drivers/warn-mmap
# A panic before init: the kernel booted with no initramfs at all.
kernel=$(node -e "import('./dist/kernel/index.js').then(async k => console.log((await k.acquireKernel(k.parseKernelSpec('debian:bookworm'), { cacheDir: (await import('./dist/util/paths.js')).cacheRoot() })).image))")
timeout 120 qemu-system-x86_64 -accel tcg -m 256 -display none -monitor none -serial stdio -no-reboot -nodefaults \
  -net none -kernel "$kernel" -append "console=ttyS0 quiet panic=-1" < /dev/null > "$out/early-panic.console.log" 2>&1 || true
echo "captured early-panic"

# Real results for the matrix model, merge, JUnit and Markdown tests.
m=test/fixtures/matrix
mkdir -p "$m"
node bin/mmaplab.js check test/fixtures/drivers/old-vm-flags --kernel debian:bullseye --kernel debian:sid --json --output-dir "$tmp/m-check" > "$m/check-old-vm-flags.json" || true
for k in bookworm sid; do
  node bin/mmaplab.js run --strategy seed,remap-vmalloc-range --kernel "debian:$k" --json --output-dir "$tmp/m-$k" > "$m/run-$k.json" || true
done
echo "captured matrix results"
