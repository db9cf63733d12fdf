#!/bin/sh
# mmaplab job: load the driver, run the test program for each check, unload,
# and report every step as one JSON line on stdout. Runs inside the lab guest,
# and (for SSH targets) on a real machine, so it needs only POSIX sh, awk,
# insmod/rmmod, dmesg and, for tracing, tracefs with kprobe events.
#
# It reports facts and judges nothing: what insmod and rmmod said, which device
# node it used and how it found it, /proc/vmallocinfo before and after, the
# pages rmmod freed still marked reserved, the taint mask. mmaplab's
# TypeScript (parse/job-records.ts) turns them into verdicts.
#
# Usage: run.sh DIR, where DIR/job.env sets JOB_ID, STRATEGY, MODULE (a path
# relative to DIR), MODULE_NAME, MODULE_PARAMS, DEVICE_NAME, DEVICE, TEST
# (relative to DIR), CHECKS (comma-separated), PAGES, PATTERN, STEP_TIMEOUT,
# TRACE_KEEP (1: leave the kprobe events registered for the next job, as a
# guest does), LINK_TEST (0 on an SSH target: put nothing into its /bin),
# REMAP_ARGS and PAGE_FREE_ARGS (the kprobe fetch-args for this machine's
# architecture; REMAP_ARGS empty: do not trace), and optionally TEST_FLAGS (more
# mmap-test options), KEEP_LOADED=1 (no rmmod: mmaplab shell), INSPECT=1 (a
# driver of the user's own: find its device if DEVICE_NAME is empty, report
# vmalloc areas and taint), STATE=1 (a guest that may serve another job: report
# what the job may leave behind, the loaded modules, character devices, vmalloc
# areas, taint and reserved pages freed, so the host can tell whether the guest
# is as it was), PG_RESERVED_BIT, SECTIONS=1 (report the loaded driver's section
# addresses from /sys/module/NAME/sections: mmaplab debug) and LOADED=1 (the
# driver is loaded already, by an earlier job that kept it: no insmod).
#
# run.sh --prepare FILE (the guest agent, before it says ready): register the
# kprobe events FILE describes, disabled, so a snapshot holds them and no job
# pays for them again. MMAPLAB_JOB_LIB=1 . run.sh only defines the functions
# (the agent uses the JSON writer; the tests run it on the host).

# The one JSON writer. emit TYPE KEY=VALUE... prints {"t":"TYPE","KEY":"VALUE",...};
# KEY:=VALUE writes VALUE bare when it is a number, true, false or null (else as a
# string). With -l, one record per line of stdin, the line as "line".
emit() {
  if [ "$1" != -l ] && emit_plain "$@"; then return 0; fi
  emit_awk "$@"
}
emit_awk() {
  lines=0
  if [ "$1" = -l ]; then lines=1 && shift; fi
  awk -v lines="$lines" '
    # Replacement strings with backslashes mean different things to busybox awk,
    # mawk and gawk, so each special character is replaced by splitting on it.
    function rep(s, from, to,   out, i) { out = ""; while ((i = index(s, from)) > 0) { out = out substr(s, 1, i - 1) to; s = substr(s, i + length(from)) } return out s }
    # Other control characters (escape sequences in the names and printk text of a driver) as \u00XX: the host shows them, never obeys them.
    function esc(s,   c) { s = rep(rep(rep(rep(s, "\\", "\\\\"), "\"", "\\\""), "\t", "\\t"), "\n", "\\n"); if (s ~ /[\001-\037]/) for (c in ctl) s = rep(s, ctl[c], uni[c]); return s }
    function record(extra,   i, a, p, k, v, out) {
      out = "{\"t\":\"" esc(ARGV[1]) "\""
      for (i = 2; i < n; i++) {
        a = ARGV[i]; p = index(a, "="); k = substr(a, 1, p - 1); v = substr(a, p + 1)
        if (substr(k, length(k)) == ":") {
          k = substr(k, 1, length(k) - 1)
          if (v ~ /^-?[0-9]+$/ || v == "true" || v == "false" || v == "null") out = out ",\"" esc(k) "\":" v
          else out = out ",\"" esc(k) "\":\"" esc(v) "\""
        } else out = out ",\"" esc(k) "\":\"" esc(v) "\""
      }
      return out extra "}"
    }
    BEGIN {
      for (c = 1; c < 32; c++) if (c != 9 && c != 10) { ctl[c] = sprintf("%c", c); uni[c] = sprintf("\\u%04x", c) }
      n = ARGC; ARGC = 1
      if (!lines) { print record(""); exit }
    }
    !/^#/ { print record(",\"line\":\"" esc($0) "\"") }
  ' "$@"
}

# emit without a process, for the common record: when the type, every key and
# every value are printable ASCII without a quote or backslash, nothing needs
# escaping and printf (a shell builtin) writes the same JSON awk would. Else it
# fails, and emit leaves the record to awk. Under TCG a process costs ~10 ms.
emit_plain() {
  case "$1" in '' | *[!\ -~]* | *[\"\\]*) return 1 ;; esac
  _er="{\"t\":\"$1\""
  shift
  for _ea in "$@"; do
    case "$_ea" in *=*) ;; *) return 1 ;; esac
    case "$_ea" in *[!\ -~]* | *[\"\\]*) return 1 ;; esac
    _ek=${_ea%%=*}
    _ev=${_ea#*=}
    case "$_ek" in
    *:)
      _ek=${_ek%:}
      _en=${_ev#-}
      case "$_ev" in
      true | false | null) _er="$_er,\"$_ek\":$_ev" ;;
      *) case "$_en" in '' | *[!0-9]*) _er="$_er,\"$_ek\":\"$_ev\"" ;; *) _er="$_er,\"$_ek\":$_ev" ;; esac ;;
      esac
      ;;
    *) _er="$_er,\"$_ek\":\"$_ev\"" ;;
    esac
  done
  printf '%s}\n' "$_er"
}

mark() { echo "mmaplab: $*" > /dev/kmsg; }

step() { # name status output
  emit step step="$1" status:="$2" output="$3"
}

# Kernel calls the mapping strategies make, traced with kprobe events: the
# return value of each (any architecture), and, where this machine's
# registers are known (REMAP_ARGS), what remap_pfn_range() was asked to map.
T=/sys/kernel/tracing
# The events go to a trace instance of mmaplab's own: its buffer holds only
# them, the test program consumes it (trace_pipe), and nothing anyone else
# traces on a real machine is read, cleared or consumed.
I=$T/instances/mmaplab
TRACED="remap_pfn_range vm_insert_page remap_vmalloc_range vm_map_pages"
tracing=0
tracing_off=
tracing_probe=
# Enable the mapping calls' events one by one: the group's switch would also
# enable page_free (registered beside them, but wanted only with its filter).
trace_enable() {
  for e in $TRACED remap_pfn_range_args; do
    [ -d "$I/events/mmaplab/$e" ] && echo "$1" > "$I/events/mmaplab/$e/enable" 2> /dev/null
  done
  [ -d "$I/events/mmaplab/remap_pfn_range" ]
}
trace_setup() {
  if [ -z "${REMAP_ARGS:-}" ]; then
    tracing_off=not-asked
    return 0
  fi
  [ -d "$T/events" ] || mount -t tracefs nodev "$T" 2> /dev/null
  if [ ! -w "$T/kprobe_events" ]; then
    tracing_off=no-kprobe-events
    return 0
  fi
  # Registering a kprobe costs tens of milliseconds: reuse those of an earlier job (or of the snapshot).
  if [ -d "$T/events/mmaplab" ] && [ -d "$I" ]; then
    trace_enable 1 && tracing=1
    return 0
  fi
  if [ ! -d "$T/events/mmaplab" ]; then
    for fn in $TRACED; do
      if ! echo "r:mmaplab/$fn $fn ret=\$retval:s32" >> "$T/kprobe_events" 2> /dev/null; then
        tracing_off=refused
        tracing_probe=$fn
        return 0
      fi
    done
    echo "p:mmaplab/remap_pfn_range_args remap_pfn_range $REMAP_ARGS" >> "$T/kprobe_events" 2> /dev/null
  fi
  if ! mkdir "$I" 2> /dev/null && [ ! -d "$I" ]; then
    tracing_off=no-instance
    return 0
  fi
  trace_enable 1 && tracing=1
}
# The page_free probe (INSPECT, STATE) watches rmmod free pages still marked PG_reserved.
page_free_probe() {
  [ -n "${PAGE_FREE_ARGS:-}" ] || return 1
  [ -d "$T/events/mmaplab/page_free" ] ||
    echo "p:mmaplab/page_free __free_pages $PAGE_FREE_ARGS" >> "$T/kprobe_events" 2> /dev/null
  [ -d "$I/events/mmaplab/page_free" ]
}
# The page_free lines in mmaplab's trace instance (its buffer holds little else: the
# test program consumed the mapping calls' lines), counted by the shell itself into _n.
page_free_count() {
  _n=0
  while read -r _l; do
    case "$_l" in *" page_free: "*) _n=$((_n + 1)) ;; esac
  done < "$I/trace"
}
trace_teardown() {
  [ "$tracing" = 1 ] && [ "${TRACE_KEEP:-0}" != 1 ] || return 0
  echo 0 > "$I/events/mmaplab/enable"
  rmdir "$I" 2> /dev/null
  for e in $TRACED remap_pfn_range_args page_free; do echo "-:mmaplab/$e" >> "$T/kprobe_events" 2> /dev/null; done
}

# What a driver can leave registered, as one record: the loaded modules, the
# character devices, the device classes, the misc devices and /proc's own
# entries. Shell builtins only (no process started but one cat), since every
# job in a shared guest reads them twice.
guest_state() {
  mods=
  while read -r m _; do mods="$mods $m"; done < /proc/modules
  devs=
  section=
  while read -r a b; do
    case "$a" in Character) section=c; continue ;; Block) section=b; continue ;; esac
    [ "$section" = c ] && [ -n "$b" ] && devs="$devs|$a $b"
  done < /proc/devices
  classes=
  for e in /sys/class/*; do classes="$classes|${e##*/}"; done
  misc=
  for e in /sys/class/misc/*; do misc="$misc|${e##*/}"; done
  procs=
  for e in /proc/*; do
    case "${e##*/}" in *[!0-9]*) procs="$procs|${e##*/}" ;; esac
  done
  # Not read: sysctl files answer only a read from offset 0, and read(1) takes a byte at a time.
  emit guest-state when="$1" modules="${mods# }" chrdevs="${devs#|}" classes="${classes#|}" misc="${misc#|}" proc="${procs#|}" tainted:="$(cat /proc/sys/kernel/tainted)"
}

# Character devices as "major name" lines, from /proc/devices.
char_devices() {
  section=
  while read -r a b; do
    case "$a" in Character) section=c; continue ;; Block) section=b; continue ;; esac
    [ "$section" = c ] && [ -n "$b" ] && echo "$a $b"
  done < /proc/devices
}

# The character device nodes in /dev, one per line.
char_nodes() {
  for n in /dev/*; do [ -c "$n" ] && echo "$n"; done
}

# The driver's device, reported as found: by name in /proc/devices (a node is made
# for it), given (--device), the character device insmod added, or the node
# devtmpfs made for a misc or class device.
find_device() {
  major=
  how=
  if [ -n "$DEVICE_NAME" ]; then
    while read -r num name; do
      [ "$name" = "$DEVICE_NAME" ] && major=$num && how=name && break
    done < /proc/devices
  elif [ "$INSPECT" = 1 ] && [ -n "$DEVICE" ] && [ -c "$DEVICE" ]; then
    emit device how=given path="$DEVICE"
    return 0
  else
    new=$(char_devices | while read -r num name; do
      case "$devices_before" in *"$num $name"*) ;; *) echo "$num $name" ;; esac
    done | head -n 1)
    if [ -n "$new" ]; then
      major=${new%% *}
      DEVICE_NAME=${new#* }
      DEVICE=/dev/mmaplab-$DEVICE_NAME
      how='new-chrdev'
    else
      node=$(char_nodes | while read -r n; do
        case "$nodes_before" in *"|$n|"*) ;; *) echo "$n" ;; esac
      done | head -n 1)
      if [ -n "$node" ]; then
        DEVICE=$node
        emit device how=devtmpfs path="$DEVICE"
        return 0
      fi
    fi
  fi
  if [ -z "$major" ]; then
    emit device how=none looked="$DEVICE_NAME"
    return 0
  fi
  rm -f "$DEVICE"
  out=$(mknod "$DEVICE" c "$major" 0 2>&1)
  emit device how="$how" path="$DEVICE" major:="$major" name="$DEVICE_NAME" mknod:=$? error="$out"
}

# The loaded driver's sections and their addresses (root reads the real ones), one
# record each, from its /sys/module/NAME/sections. One grep reads them all: a
# section file answers only a read from offset 0, as cat and grep read it (read(1) does not).
report_sections() {
  grep -H '' "$1"/.[!.]* "$1"/* 2> /dev/null | while IFS= read -r l; do
    name=${l%:*}
    emit section name="${name##*/}" addr="${l##*:}"
  done
}

finish() {
  trace_teardown
  mark "job $JOB_ID end"
  # The job's slice of the kernel log, from its begin marker on, one record per line.
  dmesg | awk -v m="mmaplab: job $JOB_ID begin" 'found || index($0, m) { found = 1; print }' | emit -l kmsg
  emit job-done id:="$JOB_ID"
  exit 0
}

# The lab's own test program (TEST), run as its instructions run it: ./mmap-test N for each N of
# LAB_RUNS, in the job's folder. A program that opens its device node without making it gets
# LAB_NODE (the lab's MMAP_DEV) linked to the driver's device found above; the lab's own makes
# it (mknod MMAP_DEV c 42 0, the lab's fixed major) and removes it at exit, as in the lab's VM.
# Its stdout is line-buffered (mmaplab built it so): the lab's test 3 sleeps 30 s after its
# last line ("mmaped :N MB"), so it is stopped once that is out. It is the submission's
# program: in a session of its own (its children are stopped with it), without the job
# channel (fd 3), its output cut in the guest.
lab_runs() {
  for n in $LAB_RUNS; do
    made_lab_node=
    if [ -n "$LAB_NODE" ] && [ ! -e "$LAB_NODE" ] && [ -n "$DEVICE" ] && [ -e "$DEVICE" ]; then
      ln -s "$DEVICE" "$LAB_NODE" && made_lab_node=1
    fi
    out="/tmp/lab-$JOB_ID-$n"
    mark "lab run $n"
    (cd "$dir" && exec setsid "$dir/$TEST" "$n") < /dev/null > "$out" 2>&1 3>&- &
    pid=$!
    ticks=0
    stopped=
    while kill -0 "$pid" 2> /dev/null; do
      if grep -q '^mmaped :' "$out"; then
        stopped=after-result
        break
      fi
      if [ "$ticks" -ge $((STEP_TIMEOUT * 5)) ]; then
        stopped=deadline
        break
      fi
      sleep 0.2
      ticks=$((ticks + 1))
    done
    if [ -n "$stopped" ]; then
      kill -TERM -- "-$pid" 2> /dev/null || kill -TERM "$pid" 2> /dev/null
      for _ in 1 2 3 4 5; do kill -0 "$pid" 2> /dev/null || break; sleep 0.2; done
      kill -KILL -- "-$pid" 2> /dev/null || kill -KILL "$pid" 2> /dev/null
    fi
    wait "$pid"
    rc=$?
    # What it started is stopped with it: nothing of one run lives on into the next, or into rmmod.
    kill -KILL -- "-$pid" 2> /dev/null
    head -c 65536 "$out" | head -n 200 | emit -l lab-output run="$n"
    emit lab-run run:="$n" status:="$rc" stopped="$stopped"
    [ -n "$made_lab_node" ] && rm -f "$LAB_NODE"
  done
}

# Sourced for its functions only (the agent, the tests).
[ "${MMAPLAB_JOB_LIB:-0}" = 1 ] && return 0
set -u

if [ "${1:-}" = --prepare ]; then
  # shellcheck source=/dev/null
  . "$2"
  INSPECT=0
  trace_setup
  # The page_free probe is wanted only where its arguments are known; the events go off either way.
  if [ "$tracing" = 1 ]; then
    page_free_probe
    trace_enable 0
  fi
  exit 0
fi

if [ "${1:-}" = --warm ]; then
  # What a job runs, without a driver and without a word in the kernel log: the
  # guest is left as it was, and QEMU has translated the code the first job runs.
  # shellcheck source=/dev/null
  . /etc/mmaplab/trace.env
  emit_awk warm line="$(cat /proc/sys/kernel/tainted)"
  emit_plain warm a=b n:=1
  guest_state warm
  grep -E -e ' 0x([0-9a-f]{8}|[0-9a-f]{16})( |$)' /proc/vmallocinfo
  dmesg | awk 'END { print NR }' | emit -l warm
  timeout 5 insmod /lib/mmaplab/no-such-module.ko
  out=$(timeout 5 true 2>&1)
  mknod /tmp/mmaplab-warm c 1 3 && rm -f /tmp/mmaplab-warm
  for program in /tmp/files/*/mmap-test; do
    [ -x "$program" ] && "$program" --device /dev/null --checks shared,private --pages 1 --pattern 0 --timeout 5
    break
  done
  exit 0
fi

dir=${1:-$(dirname "$0")}
# shellcheck source=/dev/null
. "$dir/job.env"
INSPECT=${INSPECT:-0}
STATE=${STATE:-0}
# What is read before insmod and after rmmod: for a driver of the user's own, or a guest that serves on.
facts=0
[ "$INSPECT" = 1 ] || [ "$STATE" = 1 ] && facts=1
devices_before=
nodes_before=

mark "job $JOB_ID begin"
trace_setup
emit tracing on:="$([ "$tracing" = 1 ] && echo true || echo false)" off="$tracing_off" probe="$tracing_probe"
# arm64: without hardware dirty-bit management PAGE_SHARED is writable-clean, and a write to it faults (see assess.ts).
if [ "${MACHINE:-}" = aarch64 ]; then
  features=$(dmesg | grep -F 'CPU features: detected: ')
  case "$features" in
  *'Hardware dirty bit management'*) emit cpu dirty=hw ;;
  '') emit cpu dirty=unknown ;;
  *) emit cpu dirty=sw ;;
  esac
fi

if [ "$INSPECT" = 1 ]; then
  devices_before=$(char_devices)
  nodes_before="|$(char_nodes | tr '\n' '|')"
fi
[ "$STATE" = 1 ] && guest_state before
# The areas there before the driver: mmaplab compares them with those after rmmod (INSPECT).
[ "$INSPECT" = 1 ] && [ -r /proc/vmallocinfo ] && emit -l vmalloc when=before < /proc/vmallocinfo

if [ "${LOADED:-0}" != 1 ]; then
  mark "step insmod"
  # MODULE_PARAMS is a list of name=value words.
  # shellcheck disable=SC2086
  out=$(timeout "$STEP_TIMEOUT" insmod "$dir/$MODULE" $MODULE_PARAMS 2>&1)
  rc=$?
  step insmod "$rc" "$out"
  [ "$rc" -eq 0 ] || finish
fi

find_device
[ -n "${LAB_RUNS:-}" ] && lab_runs

# SECTIONS=1: where the kernel put each of the driver's sections, for gdb.
[ "${SECTIONS:-0}" = 1 ] && report_sections "/sys/module/$(echo "$MODULE_NAME" | tr - _)/sections"

# The test program runs every check in a child of its own, marks each in the
# kernel log, and reports the traced calls of each.
if [ "$tracing" = 1 ]; then set -- --trace "$I"; else set --; fi
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
if [ "$facts" = 1 ] && [ "$tracing" = 1 ] && [ -n "${PG_RESERVED_BIT:-}" ] && page_free_probe; then
  if echo "flags & $((1 << PG_RESERVED_BIT))" > "$I/events/mmaplab/page_free/filter" 2> /dev/null &&
    echo 1 > "$I/events/mmaplab/page_free/enable" 2> /dev/null; then
    watch_reserved=1
    page_free_count
    freed_before=$_n
  fi
fi

mark "step rmmod"
out=$(timeout "$STEP_TIMEOUT" rmmod "$MODULE_NAME" 2>&1)
rc=$?
if [ "$watch_reserved" = 1 ]; then
  echo 0 > "$I/events/mmaplab/page_free/enable"
  page_free_count
  emit reserved-freed pages:="$((_n - freed_before))"
fi
step rmmod "$rc" "$out"
case "$DEVICE" in /dev/mmaplab*) rm -f "$DEVICE" ;; esac
if [ "$rc" -eq 0 ] && [ -r /proc/vmallocinfo ]; then
  if [ "$INSPECT" = 1 ]; then
    emit -l vmalloc when=after < /proc/vmallocinfo
  elif [ "$STATE" = 1 ]; then
    # Only the areas that can be the driver's (its name, or a caller in module space once it is gone):
    # a guest restored clean and judged clean after every job holds no other such area.
    # A caller gone is a bare address (x86-64 0xffffffffc..., i386 0xd08..., arm64 0xffffc76f...); a live one has a name.
    grep -E -e ' 0x([0-9a-f]{8}|[0-9a-f]{16})( |$)' -e "\[$MODULE_NAME\]" /proc/vmallocinfo > "$dir/vmalloc-left"
    [ -s "$dir/vmalloc-left" ] && emit -l vmalloc when=after < "$dir/vmalloc-left"
  fi
fi
[ "$STATE" = 1 ] && guest_state after
[ "$INSPECT" = 1 ] && emit tainted value:="$(cat /proc/sys/kernel/tainted)"
finish
