#!/usr/bin/env bash
# The systemd unit the Debian package installs (debian/pgwatchdog.service), checked the way
# systemd reads it:
#   - `systemd-analyze verify` in a scratch root that holds the host's units, /bin/kill and the
#     daemon at /usr/bin/pgwatchdog (verify checks that ExecStart's program is there): no
#     warning, no error;
#   - `systemd-analyze security --offline=true`: an overall exposure of at most MAX (default 1.1,
#     the rating of docs/systemd.md) in the band OK or better, with --threshold so that systemd
#     itself fails a worse one; and the checks it rates as not met are exactly the ones
#     docs/systemd.md names (what a network exporter must keep). The overall figure is rounded
#     to a tenth: losing one of several settings (LockPersonality=, RemoveIPC=, UMask=, ...)
#     leaves it at 1.1, so the list is what catches a weakening; a check met that the list
#     names fails too, so that the docs are brought up to date.
#
# Usage: tests/package/check-unit.sh --daemon PATH [--unit PATH] [--max-exposure X.Y]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
die() { echo "check-unit: $*" >&2; exit 1; }
daemon=""
unit=$root/debian/pgwatchdog.service
max=1.1
while (( $# )); do
  case "$1" in
    --daemon) daemon=$2; shift 2 ;;
    --unit) unit=$2; shift 2 ;;
    --max-exposure) max=$2; shift 2 ;;
    *) die "unknown argument: $1" ;;
  esac
done
[[ -x $daemon ]] || die "--daemon must name the built pgwatchdog binary"
[[ -f $unit ]] || die "no unit file $unit"
[[ $max =~ ^[0-9]\.[0-9]$ ]] || die "--max-exposure takes one decimal, e.g. 1.1"
command -v systemd-analyze >/dev/null || die "systemd-analyze is missing (Debian: systemd; scripts/install-deps)"
name=$(basename "$unit")

scratch=$(mktemp -d "${TMPDIR:-/tmp}/pgwd-unit.XXXXXX")
trap 'rm -rf -- "$scratch"' EXIT
mkdir -p "$scratch/usr/bin" "$scratch/bin" "$scratch/usr/lib/systemd" "$scratch/etc/systemd/system"
cp -r /usr/lib/systemd/system "$scratch/usr/lib/systemd/"
cp "$daemon" "$scratch/usr/bin/pgwatchdog"
[[ -x /bin/kill ]] || die "/bin/kill (ExecReload=) is missing: Debian procps"
cp /bin/kill "$scratch/bin/kill"
cp "$unit" "$scratch/etc/systemd/system/$name"

echo "== systemd-analyze verify $name"
# --man=no: the man pages are checked where they are built, not in this scratch root.
verify_out=$(systemd-analyze verify --root="$scratch" --man=no "$name" 2>&1) ||
  die "systemd-analyze verify failed:"$'\n'"$verify_out"
[[ -z $verify_out ]] || die "systemd-analyze verify warns:"$'\n'"$verify_out"
echo "no warnings"

echo "== systemd-analyze security --offline=true $name"
threshold=$(( 10#${max/./} ))   # systemd's scale: tenths
security_rc=0
security_out=$(systemd-analyze security --offline=true --threshold="$threshold" "$unit" 2>&1) ||
  security_rc=$?
grep -v '✓' <<<"$security_out" || true
read -r exposure band < <(sed -nE \
  's/.*Overall exposure level for [^:]*: ([0-9]+\.[0-9]) ([A-Z]+).*/\1 \2/p' <<<"$security_out")
[[ -n ${band:-} ]] || die "no overall exposure level in systemd-analyze's output"
(( security_rc == 0 )) || die "exposure $exposure $band is above $max (systemd-analyze exit $security_rc)"
(( 10#${exposure/./} <= threshold )) || die "exposure $exposure $band is above $max"
# systemd 252's bands, best first: PERFECT (0.0), SAFE (below 1.0), OK (below 5.0), MEDIUM, ...
case $band in
  PERFECT|SAFE|OK) ;;
  *) die "exposure $exposure is rated $band, not OK or better" ;;
esac
echo "exposure $exposure $band (at most $max)"

# The checks not met, by the field names of --json (stable, unlike the table's wording), against
# the exposures docs/systemd.md explains.
expected_unmet="DeviceAllow
IPAddressDeny
PrivateNetwork
RestrictAddressFamilies_AF_INET_INET6
RestrictAddressFamilies_AF_UNIX
RootDirectoryOrRootImage"
unmet=$(systemd-analyze security --offline=true --json=short "$unit" | python3 -c '
import json, sys
print("\n".join(sorted(c["json_field"] for c in json.load(sys.stdin) if c["set"] is False)))')
if [[ $unmet != "$expected_unmet" ]]; then
  echo "checks not met:"$'\n'"$unmet" >&2
  extra=$(comm -13 <(echo "$expected_unmet") <(echo "$unmet"))
  gone=$(comm -23 <(echo "$expected_unmet") <(echo "$unmet"))
  [[ -z $extra ]] || die "hardening lost: systemd-analyze security now rates these as not met:"$'\n'"$extra"
  die "these are met now: update expected_unmet here and docs/systemd.md's Hardening:"$'\n'"$gone"
fi
echo "checks not met: only the $(wc -l <<<"$unmet") of docs/systemd.md"
