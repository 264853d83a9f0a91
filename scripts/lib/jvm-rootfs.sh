#!/usr/bin/env bash
# The files of a JVM image, made of a Debian root's OpenJDK 21 JRE (package openjdk-21-jre-headless,
# which scripts/lab/provision.sh and scripts/cluster/cluster.sh install in their roots): the JRE and
# its configuration, the C libraries the JVM and the JDK's networking, NIO and zip libraries link,
# busybox as /bin/sh, and users root and nonroot. No registry and no Dockerfile: nothing here may be
# fetched. The lab imports it into Podman (test/src/harness/lab/lab-podman.ts), the cluster script
# builds its JVM base image from it (cluster.sh jvm_base_image).
#
#   bash scripts/lib/jvm-rootfs.sh ROOT DIR     # ROOT: / inside the lab, the cluster's root outside
#
# Sourced, it defines jvm_rootfs and JVM_HOME only.
JVM_HOME=/usr/lib/jvm/java-21-openjdk-amd64

jvm_rootfs() { # root dir
  local root=${1%/} dir=$2 lib
  if [ ! -x "$root$JVM_HOME/bin/java" ]; then
    echo "jvm-rootfs: no OpenJDK 21 at ${root:-/}$JVM_HOME: install openjdk-21-jre-headless there (run scripts/lab/provision.sh or cluster.sh provision again)" >&2
    return 1
  fi
  mkdir -p "$dir/bin" "$dir/usr/lib/jvm" "$dir/etc" "$dir/lib64" "$dir/lib/x86_64-linux-gnu" "$dir/tmp" "$dir/root" \
    "$dir/home/nonroot" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/run" "$dir/app"
  chmod 1777 "$dir/tmp"
  # The JRE keeps its configuration under /etc and links it from conf/: both, as Debian has them.
  cp -a "$root$JVM_HOME" "$dir/usr/lib/jvm/"
  cp -a "$root/etc/java-21-openjdk" "$dir/etc/"
  cp "$root/usr/bin/busybox" "$dir/bin/busybox"
  ln -s busybox "$dir/bin/sh"
  cp -L "$root/lib64/ld-linux-x86-64.so.2" "$dir/lib64/"
  # What bin/java, lib/server/libjvm.so and the JDK's libjava, libnet, libnio, libzip, libjimage
  # link (ldd); AWT's, sound's and smart cards' libraries are left out: a headless service never
  # loads them.
  for lib in libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libgcc_s.so.1 libstdc++.so.6 libz.so.1; do
    cp -L "$root/lib/x86_64-linux-gnu/$lib" "$dir/lib/x86_64-linux-gnu/"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/bin/sh\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$dir/etc/group"
  chown 65532:65532 "$dir/home/nonroot"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  [ $# = 2 ] || { echo "usage: bash $0 ROOT DIR" >&2; exit 2; }
  jvm_rootfs "$1" "$2"
fi
