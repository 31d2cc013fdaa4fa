#include "daemon/effective_config.hpp"

#include <fmt/format.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <numeric>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "daemon/config_keys.hpp"
#include "daemon/listen_address.hpp"
#include "daemon/secret_sources.hpp"
#include "daemon/yaml_document.hpp"
#include "os/unique_fd.hpp"
#include "pgwd/watchdog.hpp"
#include "target_settings.hpp"

namespace pgwd::daemon {
namespace {

struct AddrinfoDeleter {
  void operator()(addrinfo* info) const noexcept { freeaddrinfo(info); }
};

// Binds (and at once releases) the address the way the HTTP server will: IPv4, SO_REUSEADDR.
// 0 when it can be bound, else the errno; a name that does not resolve gives EADDRNOTAVAIL.
int try_bind(const std::string& listen, std::string& detail) {
  const std::size_t colon = listen.rfind(':');
  const std::string host = listen.substr(0, colon), port = listen.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int error = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); error != 0) {
    detail = gai_strerror(error);
    return EADDRNOTAVAIL;
  }
  const std::unique_ptr<addrinfo, AddrinfoDeleter> owned(found);
  const UniqueFd socket(::socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, 0));
  if (socket.get() < 0) return errno;
  const int on = 1;
  ::setsockopt(socket.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (::bind(socket.get(), found->ai_addr, found->ai_addrlen) != 0) {
    detail = std::strerror(errno);
    return errno;
  }
  return 0;
}

// A name as a message may show it: the library has not checked it yet at this point.
std::string shown_in_listing(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 60)) {
    const auto byte = static_cast<unsigned char>(c);
    out += byte < 0x20 || byte == 0x7f ? fmt::format("\\x{:02x}", byte) : std::string(1, c);
  }
  return out;
}

}  // namespace

DaemonConfig effective_config(const CommandLine& cli) {
  // Checked before the file is read: a bad flag is reported as such, whatever the file holds.
  const std::optional<Shard> shard = parse_shard_flags(cli.shard, cli.total_shards);
  DaemonConfig config = cli.config_path ? load_config_file(*cli.config_path) : DaemonConfig{};
  if (cli.listen) {
    check_listen_address(*cli.listen);
    config.listen = *cli.listen;
  }
  if (cli.log_level) config.log_level = parse_log_level(*cli.log_level).value_or(config.log_level);
  if (cli.log_format)
    config.log_format = parse_log_format(*cli.log_format).value_or(config.log_format);
  // The defaults' password_file, read once for every --target that inherits it.
  std::optional<std::string> default_password;
  for (const auto& [name, dsn] : cli.targets) {
    TargetOptions target = config.defaults;
    target.name = name;
    target.conninfo = dsn;
    // Parsed once here; one libpq cannot parse is left to validate, which says why.
    std::optional<Conninfo> parsed = parse_dsn(dsn);
    if (!config.default_sources.password_file.empty() && parsed && !parsed->get("password")) {
      try {
        if (!default_password)
          default_password =
              read_secret_file(config.default_sources.password_file, "password_file");
        add_password(*parsed, *default_password);
        target.conninfo = parsed->text();
      } catch (const ConfigError& e) {
        throw ConfigError(
            fmt::format("--target {}: defaults: {}", shown_in_listing(name), e.what()));
      }
      config.sources[name].password_file = config.default_sources.password_file;
    }
    std::shared_ptr<const TargetSettings> settings;
    try {
      if (parsed)
        settings = std::make_shared<const TargetSettings>(prepare_target(target, *parsed));
      else
        validate(target);
    } catch (const InvalidTarget& e) {
      throw ConfigError(fmt::format("--target: {}", e.what()));
    }
    // The file's strings are UTF-8 (the loader checks); so must these be, for --check-config's
    // YAML, once libpq has decoded a URI's %XX (a password aside: it is never printed). Never
    // echo the DSN: it may carry a password.
    if (find_invalid_utf8(parsed->redacted()))
      throw ConfigError(
          fmt::format("--target {}: a DSN value is not valid UTF-8 once %-decoded", name));
    if (std::any_of(config.targets.begin(), config.targets.end(),
                    [&](const auto& t) { return t.name == target.name; }) ||
        std::any_of(config.patroni_clusters.begin(), config.patroni_clusters.end(),
                    [&](const auto& c) { return c.name() == target.name; }))
      throw ConfigError(fmt::format("--target {}: a target with this name is already defined",
                                    shown_in_listing(name)));
    config.prepared.emplace(name, std::move(settings));
    config.targets.push_back(std::move(target));
  }
  if (config.targets.empty() && config.patroni_clusters.empty())
    throw ConfigError("no targets: give --target NAME=DSN, or targets: in the --config file");
  if (config.targets.size() > kMaxTargets)
    throw ConfigError(fmt::format("more than {} targets", kMaxTargets));
  const long connections =
      std::accumulate(config.targets.begin(), config.targets.end(), 0L,
                      [](long sum, const TargetOptions& t) { return sum + t.connections; });
  if (connections > kMaxTotalConnections)
    throw ConfigError(fmt::format("more than {} connections in all targets together ({})",
                                  kMaxTotalConnections, connections));
  // Every replica validates every target (above and in the loader) before it keeps its own: a
  // file is valid on all shards or on none, so replicas never disagree about a reload.
  config.targets_in_all_shards = config.targets.size();
  config.shard = shard;
  if (shard) {
    const auto elsewhere = [&](const std::string& name) {
      return shard_of(name, shard->total) != shard->index;
    };
    std::erase_if(config.targets, [&](const TargetOptions& t) { return elsewhere(t.name); });
    std::erase_if(config.prepared, [&](const auto& entry) { return elsewhere(entry.first); });
    // A cluster as a whole, by its name: only a process that watches every member can see two
    // of them answer as primary at once.
    std::erase_if(config.patroni_clusters,
                  [&](const PatroniCluster& c) { return elsewhere(c.name()); });
  }
  return config;
}

std::string to_yaml(const DaemonConfig& config) {
  std::string out;
  if (config.shard)
    out +=
        fmt::format("# shard {} of --total-shards {}: {} of the {} targets\n", config.shard->index,
                    config.shard->total, config.targets.size(), config.targets_in_all_shards);
  // Each key as its declaration shows it; `defaults:` are already folded into the targets.
  for (const TopLevelKey& key : top_level_keys())
    if (key.show != nullptr)
      if (const auto value = key.show(config)) out += fmt::format("{}: {}\n", key.name, *value);
  out += "targets:\n";
  const SecretSources no_sources;
  std::vector<ShownTarget> shown_targets;
  const auto sources_of = [&](const std::string& name) -> const SecretSources& {
    const auto sources = config.sources.find(name);
    return sources == config.sources.end() ? no_sources : sources->second;
  };
  for (const TargetOptions& t : config.targets) shown_targets.push_back({t, sources_of(t.name)});
  for (const PatroniCluster& c : config.patroni_clusters)
    shown_targets.push_back({c.members, sources_of(c.name()), &c});
  for (const ShownTarget& shown : shown_targets) {
    // "  - " before the first key, "    " before the others.
    std::string_view indent = "  - ";
    for (const TargetKey& key : target_keys()) {
      const auto value = key.show(shown);
      if (!value) continue;
      // A secret file's path, as a comment: its content is in the dsn, shown with the password
      // as ***.
      out +=
          fmt::format("{}{}{}: {}\n", indent, key.shown_as_comment ? "# " : "", key.name, *value);
      indent = "    ";
    }
  }
  return out;
}

std::string warnings(const DaemonConfig& config) {
  std::string out;
  std::unordered_set<std::string_view> names;
  for (const TargetOptions& t : config.targets) names.insert(t.name);
  // A member's target is CLUSTER/MEMBER: which members there are is known only at run time.
  const auto watched = [&](const std::string& name) {
    return names.contains(name) ||
           std::any_of(config.patroni_clusters.begin(), config.patroni_clusters.end(),
                       [&](const PatroniCluster& c) {
                         return name.size() > c.name().size() && name[c.name().size()] == '/' &&
                                name.starts_with(c.name());
                       });
  };
  // A cluster's settings are its members': the same warnings apply, under the cluster's name.
  std::vector<const TargetOptions*> all;
  for (const TargetOptions& t : config.targets) all.push_back(&t);
  for (const PatroniCluster& c : config.patroni_clusters) {
    all.push_back(&c.members);
    // The split-brain alarm compares the roles the members' connections report; with no
    // heartbeat, a member promoted while idle never reports its new role.
    if (c.members.heartbeat == Duration::zero())
      out += fmt::format(
          "# warning: Patroni cluster {} has heartbeat 0: a member promoted while its "
          "connections are idle is not seen, so two primaries at once may never raise the "
          "alarm\n",
          yaml_quoted(escape_env_references(c.name())));
  }
  for (const TargetOptions* target : all) {
    const TargetOptions& t = *target;
    const std::string name = yaml_quoted(escape_env_references(t.name));
    // Events reach a target in front of another only inside one watchdog (one shard).
    if (!t.in_front_of.empty() && !watched(t.in_front_of))
      out += fmt::format(
          "# warning: target {} is in_front_of {}, which this configuration{} does not watch: "
          "no event of it can reach {}\n",
          name, yaml_quoted(escape_env_references(t.in_front_of)),
          config.shard ? " (this shard)" : "", name);
    if (t.heartbeat != Duration::zero()) continue;
    out += fmt::format(
        "# warning: target {} has heartbeat 0: a hung server, a half-open path behind a proxy "
        "or pooler, and a role change (a promotion) are not seen while it is idle\n",
        name);
    // Behind PgBouncer in transaction pooling an idle client is linked to no server, so nothing
    // at all reaches it when the server goes: only the heartbeat's round trip finds out.
    if (t.pooler != Pooler::none)
      out += fmt::format(
          "# warning: target {} is behind {} with heartbeat 0: in transaction pooling nothing "
          "reaches an idle connection when the server stops, crashes or fails over, and the "
          "role is never asked again after login\n",
          name, to_string(t.pooler));
    // A TCP proxy answers the keepalives itself: they test only the leg to it.
    if (t.proxied)
      out += fmt::format(
          "# warning: target {} is proxied with heartbeat 0: keepalives and tcp_user_timeout "
          "reach only the proxy, so a hung or half-open server behind it is never seen, nor the "
          "proxy handing over a server of another role (target_session_attrs is checked only "
          "at login)\n",
          name);
  }
  return out;
}

std::string describe(const DaemonConfig& config) {
  std::string detail;
  const int error = try_bind(config.listen, detail);
  if (error == EADDRINUSE)
    // Likely the running daemon itself, when a file is checked before a SIGHUP: not an error.
    return fmt::format(
               "# listen: {} is in use right now; pgwatchdog can only start on it once "
               "it is free (a SIGHUP keeps the running daemon's)\n",
               config.listen) +
           warnings(config) + to_yaml(config);
  if (error != 0)
    throw ConfigError(fmt::format("listen: cannot listen on {}: {}", config.listen, detail));
  return warnings(config) + to_yaml(config);
}

}  // namespace pgwd::daemon
