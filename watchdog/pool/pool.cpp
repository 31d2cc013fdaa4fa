#include "pgwd/pool.hpp"

#include <libpq-fe.h>

#include "pg/conninfo.hpp"
#include "pgwd/watchdog.hpp"
#include "pgwd/watchdog_thread.hpp"
#include "pool/pool_core.hpp"
#include "target_settings.hpp"
#include "watchdog_internals.hpp"

namespace pgwd {
namespace {

void validate(const PoolOptions& options) {
  const std::string pool = "pool '" + options.name + "': ";
  if (options.name.empty()) throw InvalidPoolOptions("pool: name is required (the lending target)");
  if (options.dsn.empty()) throw InvalidPoolOptions(pool + "dsn is required");
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(options.dsn.c_str(), &error);
  if (parsed == nullptr) {
    // libpq's message may quote the string it choked on, the password included: not shown.
    if (error != nullptr) PQfreemem(error);
    throw InvalidPoolOptions(pool + "dsn is not a valid conninfo or URI: " +
                             redact_conninfo(options.dsn));
  }
  PQconninfoFree(parsed);
  if (options.max_size == 0) throw InvalidPoolOptions(pool + "max_size must be at least 1");
  if (options.min_idle > options.max_size) {
    throw InvalidPoolOptions(pool + "min_idle (" + std::to_string(options.min_idle) +
                             ") is larger than max_size (" + std::to_string(options.max_size) + ")");
  }
  if (options.acquire_timeout.count() < 1) {
    throw InvalidPoolOptions(pool + "acquire_timeout must be at least 1ms");
  }
  if (options.max_lifetime.count() < 0) {
    throw InvalidPoolOptions(pool + "max_lifetime must not be negative");
  }
  if (options.rollback_timeout.count() < 1) {
    throw InvalidPoolOptions(pool + "rollback_timeout must be at least 1ms");
  }
  if (options.backoff_initial.count() < 1 || options.backoff_max < options.backoff_initial) {
    throw InvalidPoolOptions(pool + "backoff_initial must be at least 1ms and at most backoff_max");
  }
  if (options.connect_timeout.count() < 1) {
    throw InvalidPoolOptions(pool + "connect_timeout must be at least 1ms");
  }
  if (options.max_concurrent_opens == 0) {
    throw InvalidPoolOptions(pool + "max_concurrent_opens must be at least 1");
  }
}

// How the watchdog's loop opens the pool's connections: the host walk of a watched connection
// (prepare_target's host list, role check and checks), on the pool's DSN as the user wrote it,
// without the defaults a watched connection adds (application name, keepalives): the
// connections are the host's.
std::shared_ptr<const LinkSettings> link_settings(const PoolOptions& options) {
  TargetOptions target;
  target.name = options.name;
  target.conninfo = options.dsn;
  target.connect_timeout = options.connect_timeout;
  TargetSettings prepared;
  try {
    prepared = prepare_target(target);
  } catch (const InvalidTarget& invalid) {
    // Its message starts with "target 'NAME': " and never contains a password.
    std::string why = invalid.what();
    const std::string prefix = "target '" + options.name + "': ";
    if (why.starts_with(prefix)) why.erase(0, prefix.size());
    throw InvalidPoolOptions("pool '" + options.name + "': " + why);
  }
  const Conninfo written = Conninfo::parse(options.dsn);
  for (const char* added : {"fallback_application_name", "keepalives", "keepalives_idle",
                            "keepalives_interval", "keepalives_count", "tcp_user_timeout"}) {
    if (!written.get(added)) prepared.link.conninfo.erase(added);
  }
  return std::make_shared<const LinkSettings>(std::move(prepared.link));
}

std::shared_ptr<PoolCore> start_core(Watchdog& watchdog, PoolOptions options) {
  validate(options);
  PoolCore::Parts parts;
  parts.lend = [&watchdog](PGconn* connection, LendOptions lend,
                           std::function<void()> on_probe_end) {
    return WatchdogInternals::lend(watchdog, connection, std::move(lend), std::move(on_probe_end));
  };
  parts.open = WatchdogInternals::open_function(watchdog, link_settings(options), options.name);
  auto core = std::make_shared<PoolCore>(std::move(parts), std::move(options), watchdog.metrics());
  core->start();
  return core;
}

}  // namespace

Pool::Pool(WatchdogThread& watchdog, PoolOptions options)
    : core_(start_core(WatchdogInternals::watchdog(watchdog), std::move(options))) {}

Pool::Pool(Watchdog& watchdog, PoolOptions options)
    : core_(start_core(watchdog, std::move(options))) {}

Pool::~Pool() { core_->stop(); }

Lease Pool::acquire() { return core_->acquire(); }

void Pool::acquire_async(std::function<void(Lease, std::exception_ptr)> done) {
  core_->acquire_async(std::move(done));
}

PoolStats Pool::stats() const { return core_->stats(); }

const std::string& Pool::name() const noexcept { return core_->name(); }

// --- Lease ------------------------------------------------------------------------------------

Lease::Lease(std::shared_ptr<PoolCore> core, std::unique_ptr<PooledConnection> connection,
             std::vector<LentNotification> notifications) noexcept
    : core_(std::move(core)),
      connection_(std::move(connection)),
      notifications_(std::move(notifications)) {}

Lease::Lease() noexcept = default;

Lease::~Lease() { release(); }

Lease::Lease(Lease&& other) noexcept
    : core_(std::move(other.core_)),
      connection_(std::move(other.connection_)),
      notifications_(std::move(other.notifications_)),
      discard_(other.discard_) {}

Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release();
    core_ = std::move(other.core_);
    connection_ = std::move(other.connection_);
    notifications_ = std::move(other.notifications_);
    discard_ = other.discard_;
  }
  return *this;
}

PGconn* Lease::get() const noexcept { return connection_ ? connection_->connection.get() : nullptr; }

const std::vector<LentNotification>& Lease::notifications() const noexcept { return notifications_; }

void Lease::release() noexcept {
  if (connection_ && core_) core_->give_back(std::move(connection_), discard_);
  connection_.reset();
  core_.reset();
  notifications_.clear();
  discard_ = false;
}

void Lease::discard() noexcept { discard_ = true; }

}  // namespace pgwd
