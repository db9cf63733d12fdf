#!/bin/sh
# mmaplab job: load the driver, run the test program under each mapping mode,
# unload, and report every step as one JSON line on stdout. Runs inside the lab
# guest, and (for SSH targets) on a real machine, so it needs only POSIX sh,
# awk, insmod/rmmod and dmesg.
#
# Usage: run.sh DIR, where DIR/job.env sets JOB_ID, MODULE, MODULE_PARAMS,
# DEVICE_NAME, DEVICE, MODES, PAGES, PATTERN, STEP_TIMEOUT.
set -u
dir=${1:-$(dirname "$0")}
. "$dir/job.env"

# JSON-escape stdin into one string (newlines become \n).
json_str() {
  awk 'BEGIN { ORS = "" } {
    gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); gsub(/\r/, "")
    if (NR > 1) printf "\\n"
    print
  }'
}

mark() { echo "mmaplab: $*" > /dev/kmsg; }

step() { # name status output
  printf '{"t":"step","step":"%s","status":%d,"output":"%s"}\n' "$1" "$2" "$(printf '%s' "$3" | json_str)"
}

finish() {
  mark "job $JOB_ID end"
  # The job's slice of the kernel log, from its begin marker on, one record per line.
  dmesg | awk -v m="mmaplab: job $JOB_ID begin" 'found || index($0, m) {
    found = 1
    gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); gsub(/\r/, "")
    printf "{\"t\":\"kmsg\",\"line\":\"%s\"}\n", $0
  }'
  printf '{"t":"job-done","id":%s}\n' "$JOB_ID"
  exit 0
}

mark "job $JOB_ID begin"

mark "step insmod"
out=$(timeout "$STEP_TIMEOUT" insmod "$dir/$MODULE" $MODULE_PARAMS 2>&1)
rc=$?
step insmod "$rc" "$out"
[ "$rc" -eq 0 ] || finish

major=$(awk -v n="$DEVICE_NAME" '$2 == n { print $1; exit }' /proc/devices)
if [ -z "$major" ]; then
  step device 1 "no '$DEVICE_NAME' in /proc/devices"
else
  rm -f "$DEVICE"
  out=$(mknod "$DEVICE" c "$major" 0 2>&1)
  step device $? "$DEVICE $major:0 $out"
fi

for mode in $MODES; do
  mark "test $mode begin"
  timeout "$STEP_TIMEOUT" "$dir/mmap-test" --device "$DEVICE" --mode "$mode" --pages "$PAGES" --pattern "$PATTERN"
  rc=$?
  printf '{"t":"exit","mode":"%s","status":%d}\n' "$mode" "$rc"
  mark "test $mode end status $rc"
done

mark "step rmmod"
out=$(timeout "$STEP_TIMEOUT" rmmod "${MODULE%.ko}" 2>&1)
step rmmod $? "$out"
rm -f "$DEVICE"
finish
