#!/mmaplab/bin/sh
# PID 1 of the SSH test target: a Debian root (openssh-server, sudo, gcc, the
# kernel's headers) unpacked from the initramfs, with user-mode networking.
# It starts sshd, says {"t":"ready"} on the mmaplab.0 virtio port like the lab
# guest does, and powers off on POWEROFF. Everything mmaplab does to it goes
# over SSH; the port only tells the test harness when sshd is up.
export PATH=/mmaplab/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run /tmp
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /run/sshd
hostname mmaplab-target

while read -r m; do
  [ -n "$m" ] || continue
  insmod "/mmaplab/modules/$m.ko" 2>/dev/console || echo "target: insmod $m failed" > /dev/console
done < /mmaplab/modules/list

ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2

# Kernel messages on the serial console too: the harness keeps it as a log.
echo 8 > /proc/sys/kernel/printk
/usr/sbin/sshd -e 2>/dev/console || echo "target: sshd did not start" > /dev/console

port=
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
  for p in /sys/class/virtio-ports/*; do
    [ -f "$p/name" ] && [ "$(cat "$p/name")" = mmaplab.0 ] && port=/dev/${p##*/}
  done
  [ -n "$port" ] && [ -c "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "target: no mmaplab.0 port" > /dev/console; poweroff -f; }
exec 3<>"$port"
printf '{"t":"ready","kernel":"%s","uptime":"%s"}\n' "$(uname -r)" "$(cut -d' ' -f1 /proc/uptime)" >&3
while read -r cmd rest <&3; do
  [ "$cmd" = POWEROFF ] && break
done
sync
poweroff -f
