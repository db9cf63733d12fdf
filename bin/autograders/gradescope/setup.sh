#!/bin/sh
# mmaplab as a Gradescope autograder: Gradescope runs this once, as root, when
# it builds the autograder's image. Zip it with run_autograder and a copy of
# mmaplab (a checkout, as mmaplab/) and, if you want your own, rubric.yaml:
#
#   autograder.zip: setup.sh  run_autograder  mmaplab/  [rubric.yaml]
#
# Settings (edit here): the kernel the class is graded on (pin it, e.g.
# debian:bookworm@6.1.192-3, to grade every submission on the same one), and
# the Debian archive the kernel comes from: Gradescope's images are Ubuntu,
# whose apt sources name no Debian archive.
MMAPLAB_KERNEL=${MMAPLAB_KERNEL:-debian:bookworm}
MMAPLAB_DEBIAN_ARCHIVE=${MMAPLAB_DEBIAN_ARCHIVE:-}
MMAPLAB_DEBIAN_SECURITY_ARCHIVE=${MMAPLAB_DEBIAN_SECURITY_ARCHIVE:-}
set -eu

root=${AUTOGRADER_ROOT:-/autograder}
cd "$root/source/mmaplab"
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; then
  echo "setup.sh: mmaplab needs Node.js 20 or later; install it in the image first (Gradescope's Ubuntu 22.04 and 24.04 ship older ones)" >&2
  exit 1
fi
bin/install-deps
npm ci
export MMAPLAB_DEBIAN_ARCHIVE MMAPLAB_DEBIAN_SECURITY_ARCHIVE
# The kernel, its build tools and its booted snapshot now, so grading needs no network.
node bin/mmaplab.js kernels fetch "$MMAPLAB_KERNEL"
printf '%s\n' "$MMAPLAB_KERNEL" > "$root/source/mmaplab-kernel"
