#!/usr/bin/env bash
# LIN-LUKS-001 detect (only): every data volume is on a dm-crypt LUKS device.
# Data volumes: what findmnt lists with a /dev source (a bind mount's "/dev/sda1[/dir]" counts
# as /dev/sda1), swap included (it holds memory pages), /boot and /boot/efi left out; pseudo and
# network filesystems have no block device and are not volumes here. Each one is walked up its
# block-device tree (`lsblk -nrso FSTYPE DEV`: the device, then its parents): LUKS when some
# ancestor is crypto_LUKS. A source that is not a block device we can see (a container, a
# vanished device: lsblk fails) is reported unverified: error, never compliant on what we
# could not see.
vols=() bad=() unverified=()
mapfile -t mounts < <(
  { findmnt -rn -o TARGET,SOURCE 2>/dev/null || true
    awk 'NR > 1 && $2 == "partition" { print "[SWAP] " $1 }' "$(osiris_path /proc/swaps)" 2>/dev/null || true
  } | awk '$2 ~ "^/dev/" && $1 != "/boot" && $1 != "/boot/efi" { sub(/\[.*$/, "", $2); print $1 " " $2 }' | sort -u || true
)
for m in "${mounts[@]}"; do
  target=${m% *} dev=${m##* }
  vols+=("$target")
  if ! types=$(lsblk -nrso FSTYPE "$dev" 2>/dev/null); then unverified+=("$target")
  elif ! grep -qx crypto_LUKS <<<"$types"; then bad+=("$target"); fi
done
if [ "${#bad[@]}" -gt 0 ]; then status=drift
elif [ "${#vols[@]}" -eq 0 ]; then status=error why="no mounted volume with a block device was found"
elif [ "${#unverified[@]}" -gt 0 ]; then status=error why="not a block device this host shows: ${unverified[*]}"
else status=compliant; fi
obs=(volumes "$(osiris_arr "${vols[@]}")" unencrypted "$(osiris_arr "${bad[@]}")" unverified "$(osiris_arr "${unverified[@]}")")
if [ "$status" = error ]; then obs+=(error "$(osiris_s "$why")"); fi
osiris_emit "$status" "$(osiris_obj "${obs[@]}")" "$(osiris_obj unencrypted '[]' unverified '[]')"
