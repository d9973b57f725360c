#!/bin/sh
# Init container of AMD vLLM pods: can this pod's user open the GPU device nodes that the AMD
# device plugin handed over? They keep the host's owner, group and mode (0660), so a non-root
# user needs the host group among its groups (the pod's supplementalGroups). Fails loudly,
# with each device's gid, instead of letting vLLM start and find no GPU.
#
# Usage: check-gpu-devices.sh KFD_PATH DRI_DIR   (e.g. /dev/kfd /dev/dri)
#
# POSIX sh only: it runs inside the vLLM ROCm image.

kfd="${1:-/dev/kfd}"
dri="${2:-/dev/dri}"
log() { echo "check-gpu-devices: $*"; }

if [ ! -e "$kfd" ]; then
  log "FAIL: $kfd is missing: the AMD device plugin gave this container no GPU (is it enabled on the cluster, amd_gpu_device_plugin, and does the pod request amd.com/gpu?)"
  exit 1
fi
bad=""
for dev in "$kfd" "$dri"/renderD*; do
  [ -e "$dev" ] || continue
  # test -r/-w use access(2), which honours the process's supplementary groups.
  if [ -r "$dev" ] && [ -w "$dev" ]; then
    log "ok: $dev"
  else
    gid=$(ls -ln "$dev" | awk '{print $4}')
    log "FAIL: cannot open $dev read-write as $(id): owned by gid $gid ($(ls -l "$dev"))"
    bad="$bad $gid"
  fi
done
if [ -n "$bad" ]; then
  gids=$(echo "$bad" | tr ' ' '\n' | sort -un | tr '\n' ' ')
  log "add the device group(s) to the pod's supplemental groups (VllmWorkerPoolProps.supplemental_groups=(${gids% })) and redeploy"
  exit 1
fi
exit 0
