#!/bin/sh
# Install the Debian packages the benchmarks need, only those that are missing.
# Services are never started by the install: the suite starts its own dockerd.
set -eu
PACKAGES="docker.io hyperfine wrk time"
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing Debian packages:$missing"
# Without a policy that forbids it, docker.io's postinst would start a system dockerd
# on docker0 with the default pools; forbid that for this install only.
policy=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made_policy=1
fi
trap 'if [ -n "$made_policy" ]; then rm -f "$policy"; fi' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
