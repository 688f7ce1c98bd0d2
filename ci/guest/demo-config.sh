# Sourced by the scripts that run tg-bench against one tg-replica on this
# machine (ci/guest/demo, bench/scenarios/ab-guest): the shipped
# configs/rxe-loopback.yaml with its host paths moved to a scratch folder
# and fresh keys.
#
#   cfg=$(demo_config ROOT DIR REGION [RESTART_COMMAND])   # prints the config's path
demo_config() {
  local root=$1 dir=$2 region=$3 restart=${4:-true}
  local key="$dir/host-a.key" ckey="$dir/host-a-closure.key" k
  for k in "$key" "$ckey"; do head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$k"; chmod 600 "$k"; done
  sed -e "s|/etc/tailguard/keys/host-a.key|$key|g" \
      -e "s|/etc/tailguard/keys/host-a-closure.key|$ckey|g" \
      -e "s|restart: \[systemctl, restart, host-a.service\]|restart: [/bin/sh, -c, \"$restart\"]|" \
      -e "s|cores: \[1\]|cores: [$(( $(nproc) - 1 ))]|" \
      -e "s|/var/lib/tailguard/host-a.log|$dir/host.log|" \
      -e "s|/var/lib/tailguard/epoch|$dir/epoch|" \
      -e "s|region: /dev/dax0.0|region: $region|" \
      -e "s|name: rxe0|name: ${TG_RDMA_DEVICE:-rxe0}|" \
      "$root/configs/rxe-loopback.yaml" > "$dir/tailguard.yaml"
  echo "$dir/tailguard.yaml"
}
