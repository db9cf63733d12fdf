#!/bin/sh
# mmaplab job: load the driver, run the test program for each check, unload,
# and report every step as one JSON line on stdout. Runs inside the lab guest,
# and (for SSH targets) on a real machine, so it needs only POSIX sh, awk,
# insmod/rmmod, dmesg and, for tracing, tracefs with kprobe events.
#
# Usage: run.sh DIR, where DIR/job.env sets JOB_ID, STRATEGY, MODULE (a path
# relative to DIR), MODULE_NAME, MODULE_PARAMS, DEVICE_NAME, DEVICE, TEST
# (relative to DIR), CHECKS (comma-separated), PAGES, PATTERN, STEP_TIMEOUT, TRACE_KEEP (1:
# leave the kprobe events registered for the next job, as a guest does), LINK_TEST
# (0 on an SSH target: put nothing into its /bin), and
# optionally TEST_FLAGS (more mmap-test options), KEEP_LOADED=1 (no rmmod: mmaplab
# shell) and INSPECT=1 (a driver of the
# user's own: find its device if DEVICE_NAME is empty, look for vmalloc areas
# it leaves behind after rmmod, report the taint flags).
#
# run.sh --prepare (the guest agent, before it says ready): register the kprobe
# events, disabled, so a snapshot holds them and no job pays for them again.
set -u
if [ "${1:-}" = --prepare ]; then
  prepare=1
else
  prepare=0
  dir=${1:-$(dirname "$0")}
  . "$dir/job.env"
fi

# JSON-escape stdin into one string (newlines become \n).
json_str() {
  awk 'BEGIN { ORS = "" } {
    gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); gsub(/\r/, "")
    if (NR > 1) printf "\\n"
    print
  }'
}

# One record per input line (comment lines skipped): {"t":TYPE,"check":CHECK,"line":LINE}.
json_lines() {
  awk -v t="$1" -v c="${2:-}" '!/^#/ {
    gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); gsub(/\r/, "")
    printf "{\"t\":\"%s\",\"check\":\"%s\",\"line\":\"%s\"}\n", t, c, $0
  }'
}

mark() { echo "mmaplab: $*" > /dev/kmsg; }

step() { # name status output
  if [ -z "$3" ]; then
    printf '{"t":"step","step":"%s","status":%d,"output":""}\n' "$1" "$2"
  else
    printf '{"t":"step","step":"%s","status":%d,"output":"%s"}\n' "$1" "$2" "$(printf '%s' "$3" | json_str)"
  fi
}

# Kernel calls the mapping strategies make, traced with kprobe events: the
# return value of each, and where remap_pfn_range() was asked to map.
T=/sys/kernel/tracing
TRACED="remap_pfn_range vm_insert_page remap_vmalloc_range vm_map_pages"
tracing=0
# Enable the mapping calls' events one by one: the group's switch would also
# enable page_free (registered beside them, but wanted only with its filter).
trace_enable() {
  for e in $TRACED remap_pfn_range_args; do
    [ -d "$T/events/mmaplab/$e" ] && echo "$1" > "$T/events/mmaplab/$e/enable" 2> /dev/null
  done
  [ -d "$T/events/mmaplab/remap_pfn_range" ]
}
trace_setup() {
  [ -d "$T/events" ] || mount -t tracefs nodev "$T" 2> /dev/null
  [ -w "$T/kprobe_events" ] || return 0
  # Registering a kprobe costs tens of milliseconds: reuse those of an earlier job (or of the snapshot).
  if [ -d "$T/events/mmaplab" ]; then
    trace_enable 1 && tracing=1
    return 0
  fi
  for fn in $TRACED; do
    echo "r:mmaplab/$fn $fn ret=\$retval:s32" >> "$T/kprobe_events" 2> /dev/null || return 0
  done
  # x86-64 arguments: vma in %di, addr in %si, pfn in %dx, size in %cx.
  echo 'p:mmaplab/remap_pfn_range_args remap_pfn_range addr=%si:x64 pfn=%dx:x64 size=%cx:x64' >> "$T/kprobe_events" 2> /dev/null
  trace_enable 1 && tracing=1
}
# The page_free probe (INSPECT) watches rmmod free pages still marked PG_reserved.
page_free_probe() {
  [ -d "$T/events/mmaplab/page_free" ] ||
    echo 'p:mmaplab/page_free __free_pages flags=+0(%di):x64 order=%si:u32' >> "$T/kprobe_events" 2> /dev/null
}
trace_teardown() {
  [ "$tracing" = 1 ] && [ "${TRACE_KEEP:-0}" != 1 ] || return 0
  echo 0 > "$T/events/mmaplab/enable"
  for e in $TRACED remap_pfn_range_args page_free; do echo "-:mmaplab/$e" >> "$T/kprobe_events" 2> /dev/null; done
}

if [ "$prepare" = 1 ]; then
  trace_setup
  [ "$tracing" = 1 ] && page_free_probe && trace_enable 0
  exit 0
fi

finish() {
  trace_teardown
  mark "job $JOB_ID end"
  # The job's slice of the kernel log, from its begin marker on, one record per line.
  dmesg | awk -v m="mmaplab: job $JOB_ID begin" 'found || index($0, m) { found = 1; print }' | json_lines kmsg
  printf '{"t":"job-done","id":%s}\n' "$JOB_ID"
  exit 0
}

mark "job $JOB_ID begin"
trace_setup
printf '{"t":"tracing","on":%s}\n' "$([ "$tracing" = 1 ] && echo true || echo false)"

# Character devices as "major name" lines, from /proc/devices.
char_devices() {
  section=
  while read -r a b; do
    case "$a" in Character) section=c; continue ;; Block) section=b; continue ;; esac
    [ "$section" = c ] && [ -n "$b" ] && echo "$a $b"
  done < /proc/devices
}
INSPECT=${INSPECT:-0}
if [ "$INSPECT" = 1 ]; then
  devices_before=$(char_devices)
  nodes_before=$(ls /dev)
  # Without the address range (hashed for most readers): size, caller and the rest.
  [ -r /proc/vmallocinfo ] && awk '{ $1 = ""; print }' /proc/vmallocinfo > "$dir/vmalloc-before"
fi

mark "step insmod"
out=$(timeout "$STEP_TIMEOUT" insmod "$dir/$MODULE" $MODULE_PARAMS 2>&1)
rc=$?
step insmod "$rc" "$out"
[ "$rc" -eq 0 ] || finish

# The driver's device: by name in /proc/devices, or (INSPECT, no name given) the
# character device insmod added, or the node devtmpfs made for a misc/class device.
major=
if [ -n "$DEVICE_NAME" ]; then
  while read -r num name; do
    [ "$name" = "$DEVICE_NAME" ] && major=$num && break
  done < /proc/devices
elif [ "$INSPECT" = 1 ] && [ -n "$DEVICE" ] && [ -c "$DEVICE" ]; then
  step device 0 "$DEVICE (given)"
  DEVICE_FOUND=1
else
  new=$(char_devices | while read -r num name; do
    case "$devices_before" in *"$num $name"*) ;; *) echo "$num $name" ;; esac
  done)
  if [ -n "$new" ]; then
    set -- $new
    major=$1
    DEVICE_NAME=$2
    DEVICE=/dev/mmaplab-$2
  else
    for n in $(ls /dev); do
      case " $(echo $nodes_before) " in *" $n "*) ;; *) [ -c "/dev/$n" ] && DEVICE=/dev/$n && break ;; esac
    done
    [ -c "${DEVICE:-}" ] && step device 0 "$DEVICE (made by devtmpfs)" && DEVICE_FOUND=1
  fi
fi
if [ "${DEVICE_FOUND:-0}" != 1 ]; then
  if [ -z "$major" ]; then
    step device 1 "no new character device after insmod${DEVICE_NAME:+ (looked for '$DEVICE_NAME' in /proc/devices)}"
  else
    rm -f "$DEVICE"
    out=$(mknod "$DEVICE" c "$major" 0 2>&1)
    step device $? "$DEVICE $major:0 ($DEVICE_NAME) $out"
  fi
fi

# The test program runs every check in a child of its own, marks each in the
# kernel log, and reports the traced calls of each.
if [ "$tracing" = 1 ]; then set -- --trace "$T"; else set --; fi
if [ -n "$CHECKS" ]; then
  # shellcheck disable=SC2086
  "$dir/$TEST" --device "$DEVICE" --checks "$CHECKS" --pages "$PAGES" --pattern "$PATTERN" \
    --timeout "$STEP_TIMEOUT" --kmsg ${TEST_FLAGS:-} "$@"
fi

# KEEP_LOADED=1 (mmaplab shell): leave the driver loaded and (in a guest, LINK_TEST=1) the test program on the PATH.
if [ "${KEEP_LOADED:-0}" = 1 ]; then
  [ "${LINK_TEST:-1}" = 1 ] && ln -sf "$(cd "$dir/$(dirname "$TEST")" && pwd)/$(basename "$TEST")" /bin/mmap-test
  finish
fi

# INSPECT: count the pages rmmod frees while they are still marked PG_reserved
# (a kernel without DEBUG_VM says nothing of it); PG_RESERVED_BIT comes from the headers.
watch_reserved=0
if [ "$INSPECT" = 1 ] && [ "$tracing" = 1 ] && [ -n "${PG_RESERVED_BIT:-}" ]; then
  page_free_probe
  if echo "flags & $((1 << PG_RESERVED_BIT))" > "$T/events/mmaplab/page_free/filter" 2> /dev/null &&
    echo 1 > "$T/events/mmaplab/page_free/enable" 2> /dev/null; then
    watch_reserved=1
    freed_before=$(grep -c ' page_free: ' "$T/trace")
  fi
fi

mark "step rmmod"
out=$(timeout "$STEP_TIMEOUT" rmmod "$MODULE_NAME" 2>&1)
rc=$?
if [ "$watch_reserved" = 1 ]; then
  echo 0 > "$T/events/mmaplab/page_free/enable"
  printf '{"t":"reserved-freed","pages":%d}\n' "$(($(grep -c ' page_free: ' "$T/trace") - freed_before))"
fi
step rmmod $rc "$out"
case "$DEVICE" in /dev/mmaplab*) rm -f "$DEVICE" ;; esac
if [ "$INSPECT" = 1 ] && [ "$rc" -eq 0 ] && [ -r "$dir/vmalloc-before" ]; then
  # vmalloc areas that appeared while the driver was loaded and are still there
  # after rmmod: the lines of now that were not there before (counting repeats).
  awk '{ $1 = ""; print }' /proc/vmallocinfo |
    awk 'NR == FNR { seen[$0]++; next } { if (seen[$0] > 0) seen[$0]--; else print }' "$dir/vmalloc-before" - |
    json_lines vmalloc-left
fi
[ "$INSPECT" = 1 ] && printf '{"t":"tainted","value":%s}\n' "$(cat /proc/sys/kernel/tainted)"
finish
