# shellcheck shell=bash
# The one place that knows how to boot a tailguard test VM.
#
# A VM is the distribution kernel (which carries rdma_rxe) booted by virtme-ng
# under TCG with the host's root filesystem shared read-only, the workspace and
# an output folder shared read-write, and an emulated NVDIMM backed by a host
# file. Inside, ci/guest/init brings up Soft-RoCE and /dev/dax0.0 and runs the
# command. Callers: ci/rxe-vm (one node), ci/cluster (two nodes).
#
# Source ci/lib/common.sh first.

# Defaults; every one can be overridden by the caller (flags of ci/rxe-vm).
: "${TG_VM_MEMORY:=2G}"          # guest RAM (vng --memory and qemu -m)
: "${TG_VM_CPUS:=2}"
: "${TG_VM_NVDIMM_SIZE:=512M}"   # backing file size; the devdax namespace is 64 MiB smaller
: "${TG_VM_TIMEOUT_S:=1800}"     # wall-clock bound on the whole VM run

# tg_vm_kernel [VERSION|PATH]: print the path of a kernel image that has rdma_rxe.
tg_vm_kernel() {
  local want=${1:-${TG_VM_KERNEL:-}} v
  if [ -n "$want" ]; then
    if [ -f "$want" ]; then echo "$want"; return; fi
    [ -f "/boot/vmlinuz-$want" ] || tg_die "kernel '$want' not found (no /boot/vmlinuz-$want); installed: $(ls /boot | grep vmlinuz- | sed 's/vmlinuz-//' | tr '\n' ' ')"
    echo "/boot/vmlinuz-$want"; return
  fi
  for v in $(ls /lib/modules 2>/dev/null | sort -Vr); do
    if [ -f "/boot/vmlinuz-$v" ] && find "/lib/modules/$v" -name 'rdma_rxe.ko*' -print -quit | grep -q .; then
      echo "/boot/vmlinuz-$v"; return
    fi
  done
  tg_die "no installed kernel with the rdma_rxe module: run ci/setup (installs linux-image-amd64)"
}

tg_vm_check_tools() {
  tg_need vng "virtme-ng is not installed: run ci/setup"
  tg_need qemu-system-x86_64 "qemu is not installed: run ci/setup"
  [ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || tg_die "busybox not found (virtme-ng needs busybox-static): run ci/setup"
  case "$(ldd "$(command -v busybox)" 2>&1)" in
    *"not a dynamic"*|*"statically linked"*) ;;
    *) tg_die "busybox is not static (virtme-ng needs busybox-static): run ci/setup" ;;
  esac
}

# tg_vm_size_bytes 512M -> 536870912
tg_vm_size_bytes() { numfmt --from=iec "$1"; }

# tg_vm_run OUTDIR NVDIMM_FILE EXTRA_QEMU_OPTS GUEST_ARGS...
#   Boots one VM and runs ci/guest/init GUEST_ARGS... inside it.
#   OUTDIR receives console.log (everything the guest printed), cmd.log (the
#   command's own output, streamed to our stdout as it runs), status (the
#   command's exit status, written by the guest) and qemu.pid (while qemu
#   runs: a drill may kill it to power the VM off, after creating
#   OUTDIR/killed-on-purpose). Returns that status; 124 when the time bound
#   hit; 125 when the guest never ran the command; 137 when killed on purpose.
#
#   Optional, set by the caller:
#     TG_VM_GUEST_ENV  array of NAME=VALUE exported to the guest's init and
#                      command (e.g. TG_VM_MAC=..., TG_VM_IP=... for a NIC
#                      given in EXTRA_QEMU_OPTS; see ci/guest/init)
#     TG_VM_LABEL      prefix of the streamed cmd.log lines (two VMs at once)
#     TG_VM_RWDIRS     array of further host folders shared read-write (two
#                      VMs that coordinate through files share one)
tg_vm_run() {
  local out=$1 nvdimm=$2 extra=$3; shift 3
  # Explicit checks: callers use `tg_vm_run ... || rc=$?`, where set -e is off.
  local kernel; kernel=$(tg_vm_kernel) || return 125
  tg_vm_check_tools
  mkdir -p "$out" || tg_die "cannot create $out"
  rm -f "$out/status" "$out/cmd.log" "$out/console.log" "$out/qemu.pid" "$out/killed-on-purpose"
  : > "$out/cmd.log"

  local size_b; size_b=$(tg_vm_size_bytes "$TG_VM_NVDIMM_SIZE") || tg_die "bad NVDIMM size '$TG_VM_NVDIMM_SIZE' (use e.g. 512M)"
  if [ ! -f "$nvdimm" ]; then
    mkdir -p "$(dirname "$nvdimm")" && truncate -s "$size_b" "$nvdimm" || tg_die "cannot create NVDIMM backing file $nvdimm"
    tg_log "created NVDIMM backing file $nvdimm ($TG_VM_NVDIMM_SIZE)"
  elif [ "$(stat -c %s "$nvdimm")" != "$size_b" ]; then
    tg_die "NVDIMM backing file $nvdimm is $(stat -c %s "$nvdimm") bytes, not $TG_VM_NVDIMM_SIZE: pass its real size (--nvdimm-size) or remove it to start empty"
  fi

  local mem_b; mem_b=$(tg_vm_size_bytes "$TG_VM_MEMORY") || tg_die "bad memory size '$TG_VM_MEMORY' (use e.g. 2G)"
  local maxmem=$(( (mem_b + size_b) / 1048576 + 1024 ))M
  local qopts="-machine nvdimm=on -m $TG_VM_MEMORY,slots=2,maxmem=$maxmem"
  qopts+=" -object memory-backend-file,id=nvm0,share=on,mem-path=$nvdimm,size=$TG_VM_NVDIMM_SIZE"
  qopts+=" -device nvdimm,id=nv0,memdev=nvm0,label-size=128K -pidfile $out/qemu.pid $extra"

  local rw=(--rwdir "$TG_ROOT" --rwdir "$out")
  [ -d "${CARGO_HOME:-$HOME/.cargo}" ] && rw+=(--rwdir "${CARGO_HOME:-$HOME/.cargo}")
  local d
  for d in ${TG_VM_RWDIRS+"${TG_VM_RWDIRS[@]}"}; do rw+=(--rwdir "$d"); done

  local env=(env)
  [ -z "${TG_VM_GUEST_ENV+x}" ] || env+=("${TG_VM_GUEST_ENV[@]}")
  # The command goes to the guest in a script in the shared out folder:
  # virtme-ng passes --exec on the kernel command line, and a long one
  # (a few KiB) overflows it and panics the guest kernel at boot.
  printf '#!/bin/bash\nexec %s\n' "$(printf '%q ' "${env[@]}" bash "$TG_ROOT/ci/guest/init" "$out" "$@")" > "$out/guest-cmd.sh"
  local cmd; cmd=$(printf '%q ' bash "$out/guest-cmd.sh")
  tg_log "booting $(basename "$kernel") (TCG, ${TG_VM_CPUS} cpus, $TG_VM_MEMORY, NVDIMM $nvdimm); console: $out/console.log"

  local labeller="" lfd
  if [ -n "${TG_VM_LABEL:-}" ]; then
    # sed prefixes the lines; it ends at EOF, once tail (killed below) is
    # gone, and is waited for so no line lands after our caller's output.
    exec {lfd}> >(sed -u "s|^|[$TG_VM_LABEL] |")
    labeller=$!
    tail -n +1 -F "$out/cmd.log" 2>/dev/null >&"$lfd" &
    exec {lfd}>&-
  else
    tail -n +1 -F "$out/cmd.log" 2>/dev/null &
  fi
  local tailer=$!
  local rc=0
  # setsid: a time-out must take qemu down with vng.
  timeout --kill-after=15 "$TG_VM_TIMEOUT_S" \
    vng --disable-kvm --run "$kernel" --memory "$TG_VM_MEMORY" --cpus "$TG_VM_CPUS" \
      --verbose "${rw[@]}" --qemu-opts="$qopts" --exec "$cmd" \
      </dev/null >"$out/console.log" 2>&1 || rc=$?
  sleep 1; kill "$tailer" 2>/dev/null; wait "$tailer" 2>/dev/null || true
  if [ -n "$labeller" ]; then
    for _ in $(seq 1 50); do kill -0 "$labeller" 2>/dev/null || break; sleep 0.1; done
  fi

  if [ -e "$out/killed-on-purpose" ]; then
    tg_log "the VM was powered off on purpose (qemu killed; $out/killed-on-purpose)"
    return 137
  fi

  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    tg_log "error: the VM did not finish within ${TG_VM_TIMEOUT_S} s (raise --timeout); last console lines:"
    tail -n 30 "$out/console.log" >&2
    return 124
  fi
  if [ ! -s "$out/status" ]; then
    tg_log "error: the VM exited (vng status $rc) without running the command: boot or guest set-up failed; last console lines:"
    tail -n 40 "$out/console.log" >&2
    return 125
  fi
  rc=$(cat "$out/status")
  if [ "$rc" != 0 ]; then
    tg_log "the command failed in the VM (exit $rc); full console: $out/console.log; last console lines:"
    tail -n 25 "$out/console.log" >&2
  fi
  return "$rc"
}
