. /test/lib.sh
IMG=/tmp/s.qcow2
mkzoned $IMG 64M zone.size=4M,zone.conventional_zones=3
modprobe ublk_drv
qemu-storage-daemon --blockdev driver=qcow2,node-name=disk0,file.driver=file,file.filename=$IMG --export type=ublk,id=exp0,node-name=disk0,writable=on > /tmp/l 2>&1 &
P=$!
sleep 3
dd if=/dev/urandom of=/tmp/data bs=64k count=16 2>/dev/null
dd if=/tmp/data of=/dev/ublkb0 bs=64k seek=64 oflag=direct conv=notrunc,fsync; echo dd=$?
kill -TERM $P; wait $P; echo exit=$?
cat /tmp/l
qemu-img check $IMG
