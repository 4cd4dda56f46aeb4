#!/bin/sh
# What the benchmarks need, installed only when missing: Debian's dockerd (docker.io,
# which brings containerd), hyperfine, wrk and GNU time; py-spy in the venv given as
# the first argument, for bench/profile.py. Services are never started by the install:
# the suite starts its own dockerd.
set -eu
VENV=${1:-.venv}
PACKAGES="docker.io hyperfine wrk time"
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
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
fi
[ -x "$VENV/bin/py-spy" ] || "$VENV/bin/pip" install -q py-spy
