# Guest-side conformance checks for a virtio-fs share (busybox ash, run in the mounted share).
# Prints one line per check: "PASS name" or "FAIL name: detail", then "TOTAL passed/failed".
# The host side prepares host-made.txt (content "from-host") and checks guest-made files afterwards.
pass=0; fail=0
ok() { echo "PASS $1"; pass=$((pass+1)); }
ko() { echo "FAIL $1: $2"; fail=$((fail+1)); }
check() { name=$1; shift; if out=$("$@" 2>&1); then ok "$name"; else ko "$name" "$(echo "$out" | tail -n1)"; fi; }

check host-file-visible   sh -c '[ "$(cat host-made.txt)" = from-host ]'
check create-write-read   sh -c 'echo hello > t1 && [ "$(cat t1)" = hello ]'
check append              sh -c 'echo a > t2 && echo b >> t2 && [ "$(cat t2)" = "$(printf "a\nb")" ]'
check truncate            sh -c 'echo 123456789 > t3 && truncate -s 4 t3 && [ "$(cat t3)" = 1234 ]'
check rename              sh -c 'echo r > r1 && mv r1 r2 && [ ! -e r1 ] && [ "$(cat r2)" = r ]'
check rename-over         sh -c 'echo new > o1 && echo old > o2 && mv o1 o2 && [ "$(cat o2)" = new ] && [ ! -e o1 ]'
check hardlink            sh -c 'echo h > h1 && ln h1 h2 && [ "$(stat -c %h h1)" = 2 ] && [ "$(cat h2)" = h ]'
check symlink             sh -c 'ln -s target s1 && [ "$(readlink s1)" = target ]'
check chmod               sh -c 'echo m > m1 && chmod 640 m1 && [ "$(stat -c %a m1)" = 640 ]'
check chown               sh -c 'echo c > c1 && chown 1234:5678 c1 && [ "$(stat -c %u:%g c1)" = 1234:5678 ]'
check mkdir-rmdir         sh -c 'mkdir d1 && [ -d d1 ] && rmdir d1 && [ ! -e d1 ]'
check unlink              sh -c 'echo u > u1 && rm u1 && [ ! -e u1 ]'
check listing-1000        sh -c 'mkdir big && cd big && i=0; while [ $i -lt 1000 ]; do : > f$i; i=$((i+1)); done; [ "$(ls | wc -l)" = 1000 ]'
check large-file          sh -c 'dd if=/dev/urandom of=big.bin bs=1M count=64 2>/dev/null && sync && md5sum big.bin > big.md5 && [ "$(stat -c %s big.bin)" = 67108864 ]'
check fsync               sh -c 'echo f > fs1 && sync fs1 2>/dev/null || sync'
check statfs              sh -c 'df . >/dev/null'
check mkfifo              sh -c 'mkfifo p1 && [ -p p1 ] && rm p1'
check tree                sh -c 'mkdir -p tr/a/b/c && echo x > tr/a/b/c/f && [ "$(find tr | wc -l)" = 5 ] && rm -r tr && [ ! -e tr ]'
check dotdot              sh -c 'mkdir -p dd/e && cd dd/e && [ "$(cd ../.. && ls -d dd)" = dd ] && cd ../.. && rm -r dd'
check rename-dir          sh -c 'mkdir rd1 && echo z > rd1/z && mv rd1 rd2 && [ "$(cat rd2/z)" = z ] && rm -r rd2'
check hardlink-unlink     sh -c 'echo k > k1 && ln k1 k2 && rm k1 && [ "$(cat k2)" = k ] && [ "$(stat -c %h k2)" = 1 ]'
check xattr               sh -c 'guestctl t1 setxattr user.k v && [ "$(guestctl t1 getxattr user.k)" = v ]'
check mmap-write-read     sh -c 'echo x > mm && guestctl mm mmap-write mapped-text && [ "$(cat mm)" = mapped-text ] && [ "$(guestctl mm mmap-read 6)" = mapped ]'
check posix-lock          sh -c 'guestctl t1 setlkw | grep acquired'
# Two guest processes: the waiter's F_SETLKW returns only once the holder lets go.
check lock-contention     sh -c 'echo l > lk && mkfifo lkctl && (guestctl lk hold < lkctl > held.out &) && exec 3>lkctl && sleep 0.3 && grep -q held held.out && (guestctl lk setlkw > waiter.out 3>&- &) && sleep 1 && [ ! -s waiter.out ] && exec 3>&- && sleep 1 && grep -q acquired waiter.out'
check getlk-unlocked      sh -c '[ "$(guestctl t1 getlk)" = unlocked ]'
check flock               sh -c 'guestctl t1 flock | grep flocked'
echo "TOTAL $pass/$fail"
