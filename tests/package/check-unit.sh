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
#     names fails too, so that the docs are brought up to date;
#   - the same with the drop-in the package ships for a pgwatchdog that only its own host
#     reaches and is reached by (debian/examples/local-only.conf: an IP allow list of
#     localhost): at most 0.9, the best band, SAFE.
#
# Usage: tests/package/check-unit.sh --daemon PATH [--unit PATH] [--max-exposure X.Y]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
die() { echo "check-unit: $*" >&2; exit 1; }
daemon=""
unit=$root/debian/pgwatchdog.service
local_only=$root/debian/examples/local-only.conf
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
[[ -f $local_only ]] || die "no drop-in $local_only"
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

# rate MAX BAND...: `systemd-analyze security --offline=true` of the unit as the scratch root has
# it (with its drop-ins): an overall exposure of at most MAX (systemd itself fails a worse one,
# --threshold), rated one of BAND..., and the checks it rates as not met exactly the ones
# docs/systemd.md names.
rate() {
  local max=$1; shift
  local threshold=$(( 10#${max/./} ))   # systemd's scale: tenths
  local security_rc=0 security_out exposure band unmet extra gone
  security_out=$(systemd-analyze security --offline=true --root="$scratch" --threshold="$threshold" \
    "$name" 2>&1) || security_rc=$?
  grep -v '✓' <<<"$security_out" || true
  read -r exposure band < <(sed -nE \
    's/.*Overall exposure level for [^:]*: ([0-9]+\.[0-9]) ([A-Z]+).*/\1 \2/p' <<<"$security_out")
  [[ -n ${band:-} ]] || die "no overall exposure level in systemd-analyze's output"
  (( security_rc == 0 )) || die "exposure $exposure $band is above $max (systemd-analyze exit $security_rc)"
  (( 10#${exposure/./} <= threshold )) || die "exposure $exposure $band is above $max"
  # systemd 252's bands, best first: PERFECT (0.0), SAFE (below 1.0), OK (below 5.0), MEDIUM, ...
  [[ " $* " == *" $band "* ]] || die "exposure $exposure is rated $band, not one of: $*"
  echo "exposure $exposure $band (at most $max, rated one of: $*)"

  # The checks not met, by the field names of --json (stable, unlike the table's wording),
  # against the exposures docs/systemd.md explains. A drop-in's IP allow list narrows
  # IPAddressDeny's exposure without meeting it whole: the same six.
  unmet=$(systemd-analyze security --offline=true --root="$scratch" --json=short "$name" | python3 -c '
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
}
expected_unmet="DeviceAllow
IPAddressDeny
PrivateNetwork
RestrictAddressFamilies_AF_INET_INET6
RestrictAddressFamilies_AF_UNIX
RootDirectoryOrRootImage"

echo "== systemd-analyze security --offline=true $name, as shipped"
rate "$max" PERFECT SAFE OK

# The drop-in for a pgwatchdog that reaches and is reached by its own host only, which the
# package ships as an example (docs/systemd.md): the best band, SAFE.
echo "== systemd-analyze security --offline=true $name, with $(basename "$local_only")"
mkdir -p "$scratch/etc/systemd/system/$name.d"
cp "$local_only" "$scratch/etc/systemd/system/$name.d/"
rate 0.9 PERFECT SAFE
