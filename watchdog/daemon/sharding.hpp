#pragma once

/// \file
/// Sharding targets over replicas (docs/daemon.md "Sharding"). Every replica reads the same full
/// config and keeps the targets whose name hashes to its shard, by rendezvous (highest random
/// weight) hashing: a target belongs to the shard s in [0, total) with the highest XXH64(name, seed
/// = s), ties to the lower s. Going from N to N+1 shards moves only the targets the new shard wins,
/// about 1/(N+1) of them; no other target changes shard. XXH64's output is fixed by its
/// specification (xxHash 0.8, Debian's libxxhash), so every build, version and machine agrees on
/// who owns what.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace pgwd::daemon {

struct Shard {
  unsigned index = 0;  ///< 0-based, < total
  unsigned total = 1;
  bool operator==(const Shard&) const = default;
};

/// Shards beyond this are refused: one replica per shard, and 1,000 replicas of a process that
/// holds up to 10,000 targets is already more than anyone runs.
constexpr unsigned kMaxShards = 1000;

/// XXH64 of the name with the shard index as seed: the rendezvous weight.
std::uint64_t rendezvous_weight(std::string_view target_name, unsigned shard_index);

/// The shard (< total, total >= 1) that owns the target.
unsigned shard_of(std::string_view target_name, unsigned total);

/// The StatefulSet ordinal at the end of a host name: "pgwatchdog-2" -> 2,
/// "pgwatchdog-2.pgwatchdog.ns.svc" -> 2 (only the first label counts); nullopt without a
/// trailing "-<digits>".
std::optional<unsigned> ordinal_of_hostname(std::string_view hostname);

/// The name --shard auto reads its ordinal from: $PGWATCHDOG_HOSTNAME when set and not empty
/// (the Kubernetes downward API can put the pod name there; the tests use it), else
/// gethostname(2), which in a Kubernetes pod is the pod name.
std::string shard_hostname();

/// --shard and --total-shards as given (either may be absent): nullopt when neither is; else the
/// shard, with `hostname` asked only for `--shard auto`. Throws ConfigError naming the flag:
/// one without the other, not a number, total 0 or above kMaxShards, shard >= total, or a host
/// name without an ordinal.
std::optional<Shard> parse_shard_flags(const std::optional<std::string>& shard,
                                       const std::optional<std::string>& total_shards,
                                       const std::function<std::string()>& hostname = shard_hostname);

}  // namespace pgwd::daemon
