#include "daemon/sharding.hpp"

#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "daemon/config.hpp"
#include "daemon/file_reading.hpp"

namespace pgwd::daemon {
namespace {

// Plain decimal digits, no sign, no spaces: what a person or a manifest writes.
std::optional<unsigned> parse_decimal(std::string_view text) {
  if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != text.npos)
    return std::nullopt;
  unsigned value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

std::string quoted_for_message(std::string_view text) {
  std::string out = escape_control_characters(text.substr(0, 80));
  if (text.size() > 80) out += "...";
  return "'" + out + "'";
}

}  // namespace

std::uint64_t rendezvous_weight(std::string_view target_name, unsigned shard_index) {
  return XXH64(target_name.data(), target_name.size(), shard_index);
}

unsigned shard_of(std::string_view target_name, unsigned total) {
  unsigned best = 0;
  std::uint64_t best_weight = rendezvous_weight(target_name, 0);
  for (unsigned shard = 1; shard < total; ++shard) {
    const std::uint64_t weight = rendezvous_weight(target_name, shard);
    if (weight > best_weight) {
      best = shard;
      best_weight = weight;
    }
  }
  return best;
}

std::optional<unsigned> ordinal_of_hostname(std::string_view hostname) {
  const std::string_view label = hostname.substr(0, hostname.find('.'));
  const std::size_t dash = label.rfind('-');
  if (dash == label.npos) return std::nullopt;
  return parse_decimal(label.substr(dash + 1));
}

std::string shard_hostname() {
  // Read once at start-up and on SIGHUP, on the loop thread; nothing in the daemon sets it.
  if (const char* injected = std::getenv("PGWATCHDOG_HOSTNAME");  // NOLINT(concurrency-mt-unsafe)
      injected && *injected)
    return injected;
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof name - 1) != 0)
    throw ConfigError(std::string("--shard auto: cannot read the host name: ") +
                      std::strerror(errno));
  return name;
}

std::optional<Shard> parse_shard_flags(const std::optional<std::string>& shard,
                                       const std::optional<std::string>& total_shards,
                                       const std::function<std::string()>& hostname) {
  if (!shard && !total_shards) return std::nullopt;
  if (!total_shards)
    throw ConfigError("--shard needs --total-shards N (the number of replicas)");
  if (!shard) throw ConfigError("--total-shards needs --shard I (0-based) or --shard auto");
  const std::optional<unsigned> total = parse_decimal(*total_shards);
  if (!total || *total == 0 || *total > kMaxShards)
    throw ConfigError("--total-shards: expected a number from 1 to " + std::to_string(kMaxShards) +
                      ", got " + quoted_for_message(*total_shards));
  Shard result{0, *total};
  if (*shard == "auto") {
    const std::string name = hostname();
    const std::optional<unsigned> ordinal = ordinal_of_hostname(name);
    if (!ordinal)
      throw ConfigError("--shard auto: the host name " + quoted_for_message(name) +
                        " does not end in -<ordinal> (as a StatefulSet's pods do: pgwatchdog-0); "
                        "give --shard I instead");
    if (*ordinal >= *total)
      throw ConfigError("--shard auto: the host name " + quoted_for_message(name) + " gives shard " +
                        std::to_string(*ordinal) + ", but --total-shards is " +
                        std::to_string(*total) + " (shards are 0 to " +
                        std::to_string(*total - 1) + ")");
    result.index = *ordinal;
    return result;
  }
  const std::optional<unsigned> index = parse_decimal(*shard);
  if (!index)
    throw ConfigError("--shard: expected a shard number (0, 1, ...) or 'auto', got " + quoted_for_message(*shard));
  if (*index >= *total)
    throw ConfigError("--shard: " + std::to_string(*index) + " is not below --total-shards " +
                      std::to_string(*total) + " (shards are 0 to " + std::to_string(*total - 1) +
                      ")");
  result.index = *index;
  return result;
}

}  // namespace pgwd::daemon
